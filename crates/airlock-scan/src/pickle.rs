//! A model of the pickle machine that imports nothing and calls nothing.
//!
//! Scanners that grep a pickle for `GLOBAL` opcodes miss `STACK_GLOBAL` operands built by
//! other opcodes (memoized strings, `BINUNICODE8`, `SHORT_BINSTRING`...) and stop at the first
//! malformed byte. [`analyse`] instead runs the real machine's semantics over a value model:
//! every protocol 0–5 opcode, the stack and mark stack, the memo, `FRAME` boundaries (reads that
//! straddle a frame fail as in CPython), several pickles in one stream, and joblib's raw array
//! blocks between opcodes. It records every global the stream would import; globals seen
//! before a parse error are kept, and the error itself is reported.
//!
//! Values are modelled only as far as verdicts need them: strings (to resolve `STACK_GLOBAL`),
//! small ints, tuples and dicts (for joblib array shapes and dtypes), and "an object made by
//! calling global X". Everything else is an opaque value. Stack, memo, string sizes and the
//! opcode count are bounded by [`Limits`](crate::Limits).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use crate::globals::{classify_at, classify_with, normalize_module, Verdict};
use crate::{Ctx, Loc, Severity, Source};

/// One global import the stream performs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalRef {
    pub module: String,
    pub name: String,
    /// Byte offset of the importing opcode.
    pub offset: u64,
    /// `GLOBAL`, `STACK_GLOBAL`, `INST` or `EXT`.
    pub opcode: &'static str,
    /// The highest `PROTO` seen in the stream so far: below 4, `find_class` does not walk
    /// dotted names (`getattr(module, "a.b")` fails), so a dotted name cannot reach anything.
    pub proto: u8,
}

/// What the machine saw.
#[derive(Debug, Default)]
pub struct Analysis {
    /// Every distinct global imported, in stream order.
    pub globals: Vec<GlobalRef>,
    /// `(offset, message)` of the first error; the stream is not a well-formed pickle there.
    pub error: Option<(u64, String)>,
    /// Complete pickles (up to `STOP`) read.
    pub pickles: usize,
    /// Operands of `STACK_GLOBAL` that were not strings the machine could resolve.
    pub unresolved: Vec<(u64, String)>,
    /// The stream is a legacy (pre-1.6, non-zip) `torch.save` file.
    pub legacy_torch: bool,
    /// The stream starts with a `PROTO` opcode.
    pub proto_header: bool,
    /// The stream carries joblib inline arrays.
    pub joblib_arrays: usize,
    /// Oddities a well-behaved pickler never writes (short frames).
    pub anomalies: Vec<(u64, String)>,
    /// Raw data bytes skipped (joblib arrays) — not pickle code.
    pub skipped: Vec<(u64, u64)>,
}

type G = Rc<(String, String)>;

#[derive(Debug, Clone)]
enum V {
    Str(Rc<str>),
    Bytes(Rc<[u8]>),
    Int(i64),
    BigInt(Rc<[u8]>),
    Bool(#[allow(dead_code)] bool),
    None,
    Global(G),
    Tuple(Rc<Vec<V>>),
    Dict(Rc<RefCell<Vec<(V, V)>>>),
    Obj(Rc<Obj>),
    Other,
}

#[derive(Debug)]
struct Obj {
    class: G,
    args: V,
    state: RefCell<Option<V>>,
}

/// Values kept per tuple/dict; more are dropped (verdicts never need them).
const KEEP: usize = 64;
/// Nested pickles (joblib object arrays) deeper than this are an error.
const MAX_NEST: usize = 8;
/// Magic number of legacy `torch.save` files (first pickle of the stream).
const TORCH_MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

struct PErr(u64, String);

type R<T> = Result<T, PErr>;

/// Buffered positioned input with CPython's frame rules.
struct Input<'a> {
    src: &'a dyn Source,
    pos: u64,
    buf: Vec<u8>,
    buf_at: u64,
    frame_end: Option<u64>,
}

const CHUNK: usize = 64 * 1024;

impl<'a> Input<'a> {
    fn new(src: &'a dyn Source) -> Self {
        Input {
            src,
            pos: 0,
            buf: Vec::new(),
            buf_at: 0,
            frame_end: None,
        }
    }

    fn err<T>(&self, msg: impl Into<String>) -> R<T> {
        Err(PErr(self.pos, msg.into()))
    }

    fn at_end(&self) -> bool {
        self.pos >= self.src.len()
    }

    /// Applies the frame rule for a read of `n` bytes starting at `pos`.
    fn frame_check(&mut self, n: u64) -> R<()> {
        if let Some(end) = self.frame_end {
            if self.pos >= end {
                self.frame_end = None;
            } else if self.pos.saturating_add(n) > end {
                return self.err("pickle exhausted before end of frame");
            }
        }
        Ok(())
    }

    /// Makes `[pos, pos + n)` available in `buf` (n <= CHUNK).
    fn fill(&mut self, n: usize) -> R<()> {
        let have_from = self.pos.wrapping_sub(self.buf_at);
        if self.pos >= self.buf_at && have_from + n as u64 <= self.buf.len() as u64 {
            return Ok(());
        }
        if self.pos.saturating_add(n as u64) > self.src.len() {
            return self.err("unexpected end of data");
        }
        let want = (self.src.len() - self.pos).min(CHUNK.max(n) as u64) as usize;
        self.buf.resize(want, 0);
        if let Err(e) = self.src.read_at(self.pos, &mut self.buf) {
            return self.err(format!("read error: {e}"));
        }
        self.buf_at = self.pos;
        Ok(())
    }

    fn byte(&mut self) -> R<u8> {
        self.frame_check(1)?;
        self.fill(1)?;
        let b = self.buf[(self.pos - self.buf_at) as usize];
        self.pos += 1;
        Ok(b)
    }

    /// Reads `n` bytes (n bounded by the caller).
    fn take(&mut self, n: usize) -> R<Vec<u8>> {
        self.frame_check(n as u64)?;
        let mut out = Vec::with_capacity(n);
        let mut left = n;
        while left > 0 {
            let step = left.min(CHUNK);
            self.fill(step)?;
            let s = (self.pos - self.buf_at) as usize;
            out.extend_from_slice(&self.buf[s..s + step]);
            self.pos += step as u64;
            left -= step;
        }
        Ok(out)
    }

    fn skip(&mut self, n: u64) -> R<()> {
        self.frame_check(n)?;
        if n > self.src.len() - self.pos.min(self.src.len()) {
            return self.err("unexpected end of data");
        }
        self.pos += n;
        Ok(())
    }

    fn uint(&mut self, n: usize) -> R<u64> {
        let b = self.take(n)?;
        let mut v = 0u64;
        for (i, x) in b.iter().enumerate() {
            v |= (*x as u64) << (8 * i);
        }
        Ok(v)
    }

    /// A `\n`-terminated line without the newline (at most 64 KiB).
    fn line(&mut self) -> R<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            if out.len() > 65536 {
                return self.err("line longer than 64 KiB");
            }
            if let Some(end) = self.frame_end {
                if self.pos == end && !out.is_empty() {
                    return self.err("pickle exhausted before end of frame");
                }
            }
            let b = self.byte()?;
            if b == b'\n' {
                return Ok(out);
            }
            out.push(b);
        }
    }
}

struct Machine<'a, 'l> {
    limits: &'l crate::Limits,
    ops: u64,
    out: Analysis,
    seen: std::collections::HashSet<(String, String)>,
    /// Highest `PROTO` seen so far.
    proto: u8,
    _p: std::marker::PhantomData<&'a ()>,
}

/// Runs the machine over a whole stream (several pickles, legacy torch, joblib arrays).
pub fn analyse(src: &dyn Source, limits: &crate::Limits) -> Analysis {
    let mut m = Machine {
        limits,
        ops: 0,
        out: Analysis::default(),
        seen: Default::default(),
        proto: 0,
        _p: Default::default(),
    };
    let mut inp = Input::new(src);
    let mut first = [0u8; 1];
    m.out.proto_header = src.read_at(0, &mut first).is_ok() && first[0] == 0x80;
    let mut index = 0usize;
    while !inp.at_end() {
        let start = inp.pos;
        match m.run(&mut inp, 0) {
            Ok(v) => {
                m.out.pickles += 1;
                if index == 0 {
                    if let V::BigInt(b) = &v {
                        if b[..] == TORCH_MAGIC {
                            m.out.legacy_torch = true;
                        }
                    }
                }
                index += 1;
                // Legacy torch: magic, protocol, sys_info, the object, storage keys; then raw
                // storage bytes follow (not pickle code).
                if m.out.legacy_torch && index == 5 {
                    break;
                }
            }
            Err(PErr(off, msg)) => {
                let msg = if index > 0 && off == start {
                    format!("data after pickle {index} is not a pickle: {msg}")
                } else {
                    msg
                };
                m.out.error = Some((off, msg));
                break;
            }
        }
    }
    m.out
}

fn as_str(v: &V) -> Option<String> {
    match v {
        V::Str(s) => Some(s.to_string()),
        V::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    }
}

fn decode_str(b: &[u8]) -> Rc<str> {
    Rc::from(String::from_utf8_lossy(b).as_ref())
}

/// Parses a protocol-0 quoted string literal (`'abc'` or `"abc"`) with Python escapes
/// (enough of them to recover module and attribute names).
fn unquote(b: &[u8]) -> Option<Vec<u8>> {
    if b.len() < 2 || !(b[0] == b'\'' || b[0] == b'"') || b[b.len() - 1] != b[0] {
        return None;
    }
    let inner = &b[1..b.len() - 1];
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    while i < inner.len() {
        if inner[i] == b'\\' && i + 1 < inner.len() {
            let c = inner[i + 1];
            i += 2;
            match c {
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b'r' => out.push(b'\r'),
                b'\\' => out.push(b'\\'),
                b'\'' => out.push(b'\''),
                b'"' => out.push(b'"'),
                b'x' if i + 2 <= inner.len() => {
                    let h = std::str::from_utf8(&inner[i..i + 2]).ok()?;
                    out.push(u8::from_str_radix(h, 16).ok()?);
                    i += 2;
                }
                _ => {
                    out.push(b'\\');
                    out.push(c);
                }
            }
        } else {
            out.push(inner[i]);
            i += 1;
        }
    }
    Some(out)
}

/// `raw-unicode-escape` decoding (protocol-0 `UNICODE`): `\uXXXX` and `\UXXXXXXXX` only.
fn raw_unicode_escape(b: &[u8]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() && (b[i + 1] == b'u' || b[i + 1] == b'U') {
            let n = if b[i + 1] == b'u' { 4 } else { 8 };
            if let Some(h) = b.get(i + 2..i + 2 + n) {
                if let Some(c) = std::str::from_utf8(h)
                    .ok()
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .and_then(char::from_u32)
                {
                    out.push(c);
                    i += 2 + n;
                    continue;
                }
            }
        }
        // Latin-1 for everything else.
        out.push(b[i] as char);
        i += 1;
    }
    out
}

fn long_le(b: &[u8]) -> V {
    if b.len() <= 8 {
        let mut v: i64 = 0;
        for (i, x) in b.iter().enumerate() {
            v |= (*x as i64) << (8 * i);
        }
        if !b.is_empty() && b.len() < 8 && b[b.len() - 1] & 0x80 != 0 {
            v -= 1i64 << (8 * b.len());
        }
        V::Int(v)
    } else {
        V::BigInt(Rc::from(b))
    }
}

impl Machine<'_, '_> {
    fn note_global(&mut self, module: &str, name: &str, offset: u64, opcode: &'static str) -> G {
        let key = (module.to_string(), name.to_string());
        if self.seen.insert(key.clone()) {
            self.out.globals.push(GlobalRef {
                module: key.0.clone(),
                name: key.1.clone(),
                offset,
                opcode,
                proto: self.proto,
            });
        }
        Rc::new(key)
    }

    /// Runs one pickle from the current position to its `STOP`; returns the value it built.
    fn run(&mut self, inp: &mut Input, nest: usize) -> R<V> {
        if nest > MAX_NEST {
            return inp.err("pickles nested too deep");
        }
        let lim_items = self.limits.max_pickle_items;
        let lim_str = self.limits.max_pickle_string;
        let mut stack: Vec<V> = Vec::new();
        let mut marks: Vec<usize> = Vec::new();
        let mut memo: HashMap<u64, V> = HashMap::new();

        macro_rules! pop {
            () => {
                match stack.len() {
                    n if n > *marks.last().unwrap_or(&0) => stack.pop().unwrap_or(V::Other),
                    _ => return inp.err("stack underflow"),
                }
            };
        }
        macro_rules! top {
            () => {
                match stack.last() {
                    Some(v) if stack.len() > *marks.last().unwrap_or(&0) => v.clone(),
                    _ => return inp.err("stack underflow"),
                }
            };
        }
        macro_rules! push {
            ($v:expr) => {{
                if stack.len() >= lim_items {
                    return inp.err(format!("stack deeper than {lim_items} items"));
                }
                stack.push($v);
            }};
        }
        macro_rules! pop_mark {
            () => {{
                let Some(m) = marks.pop() else {
                    return inp.err("no MARK on the stack");
                };
                stack.split_off(m.min(stack.len()))
            }};
        }
        macro_rules! memo_put {
            ($k:expr) => {{
                let v = top!();
                if memo.len() >= lim_items && !memo.contains_key(&$k) {
                    return inp.err(format!("memo larger than {lim_items} entries"));
                }
                memo.insert($k, v);
            }};
        }
        macro_rules! string {
            ($n:expr, $f:expr) => {{
                let n: u64 = $n;
                if n > lim_str as u64 {
                    inp.skip(n)?;
                    V::Other
                } else {
                    let b = inp.take(n as usize)?;
                    $f(b)
                }
            }};
        }

        loop {
            self.ops += 1;
            if self.ops > self.limits.max_pickle_ops {
                return inp.err(format!("more than {} opcodes", self.limits.max_pickle_ops));
            }
            let at = inp.pos;
            let op = inp.byte()?;
            match op {
                0x80 => {
                    // PROTO
                    let v = inp.byte()?;
                    if v > 5 {
                        return Err(PErr(at, format!("unsupported pickle protocol {v}")));
                    }
                    self.proto = self.proto.max(v);
                }
                0x95 => {
                    // FRAME
                    let n = inp.uint(8)?;
                    if let Some(end) = inp.frame_end {
                        if inp.pos < end {
                            return Err(PErr(
                                at,
                                "beginning of a new frame before end of current frame".into(),
                            ));
                        }
                    }
                    if n > inp.src.len() - inp.pos {
                        // CPython's pure-Python unpickler (joblib uses it) reads a short frame
                        // and runs its opcodes anyway; keep going, but say so.
                        self.out.anomalies.push((
                            at,
                            format!("frame of {n} bytes runs past the end of the data"),
                        ));
                    }
                    inp.frame_end = if n == 0 {
                        None
                    } else {
                        Some(inp.pos.saturating_add(n).min(inp.src.len()))
                    };
                }
                b'.' => {
                    // STOP
                    let v = pop!();
                    return Ok(v);
                }
                b'(' => {
                    if marks.len() >= lim_items {
                        return inp.err("too many MARKs");
                    }
                    marks.push(stack.len());
                }
                b'0' => {
                    // POP: pops the top item, or a MARK when the stack above it is empty.
                    if stack.len() > *marks.last().unwrap_or(&0) {
                        stack.pop();
                    } else if marks.pop().is_none() {
                        return inp.err("stack underflow");
                    }
                }
                b'1' => {
                    let _ = pop_mark!();
                }
                b'2' => {
                    let v = top!();
                    push!(v);
                }
                b'F' => {
                    inp.line()?;
                    push!(V::Other);
                }
                b'I' => {
                    let l = inp.line()?;
                    let s = String::from_utf8_lossy(&l);
                    let v = match s.as_ref() {
                        "00" => V::Bool(false),
                        "01" => V::Bool(true),
                        s => s.trim().parse::<i64>().map(V::Int).unwrap_or(V::Other),
                    };
                    push!(v);
                }
                b'L' => {
                    let l = inp.line()?;
                    let s = String::from_utf8_lossy(&l);
                    let s = s.trim_end_matches('L');
                    push!(s.parse::<i64>().map(V::Int).unwrap_or(V::Other));
                }
                b'J' => {
                    let v = inp.uint(4)? as u32 as i32;
                    push!(V::Int(v as i64));
                }
                b'K' => {
                    let v = inp.byte()?;
                    push!(V::Int(v as i64));
                }
                b'M' => {
                    let v = inp.uint(2)?;
                    push!(V::Int(v as i64));
                }
                0x8a => {
                    let n = inp.byte()? as usize;
                    let b = inp.take(n)?;
                    push!(long_le(&b));
                }
                0x8b => {
                    let n = inp.uint(4)? as u32 as i32;
                    if n < 0 {
                        return inp.err("LONG4 with negative byte count");
                    }
                    let v = string!(n as u64, |b: Vec<u8>| long_le(&b));
                    push!(v);
                }
                b'N' => push!(V::None),
                0x88 => push!(V::Bool(true)),
                0x89 => push!(V::Bool(false)),
                b'G' => {
                    inp.skip(8)?;
                    push!(V::Other);
                }
                b'S' => {
                    let l = inp.line()?;
                    let Some(s) = unquote(&l) else {
                        return Err(PErr(at, "STRING opcode argument must be quoted".into()));
                    };
                    push!(V::Str(decode_str(&s)));
                }
                b'T' => {
                    let n = inp.uint(4)? as u32 as i32;
                    if n < 0 {
                        return inp.err("BINSTRING pickle has negative byte count");
                    }
                    let v = string!(n as u64, |b: Vec<u8>| V::Str(decode_str(&b)));
                    push!(v);
                }
                b'U' => {
                    let n = inp.byte()? as u64;
                    let v = string!(n, |b: Vec<u8>| V::Str(decode_str(&b)));
                    push!(v);
                }
                b'V' => {
                    let l = inp.line()?;
                    push!(V::Str(Rc::from(raw_unicode_escape(&l).as_str())));
                }
                b'X' => {
                    let n = inp.uint(4)?;
                    let v = string!(n, |b: Vec<u8>| V::Str(decode_str(&b)));
                    push!(v);
                }
                0x8c => {
                    let n = inp.byte()? as u64;
                    let v = string!(n, |b: Vec<u8>| V::Str(decode_str(&b)));
                    push!(v);
                }
                0x8d => {
                    let n = inp.uint(8)?;
                    let v = string!(n, |b: Vec<u8>| V::Str(decode_str(&b)));
                    push!(v);
                }
                b'B' => {
                    let n = inp.uint(4)?;
                    let v = string!(n, |b: Vec<u8>| V::Bytes(Rc::from(b)));
                    push!(v);
                }
                b'C' => {
                    let n = inp.byte()? as u64;
                    let v = string!(n, |b: Vec<u8>| V::Bytes(Rc::from(b)));
                    push!(v);
                }
                0x8e | 0x96 => {
                    let n = inp.uint(8)?;
                    let v = string!(n, |b: Vec<u8>| V::Bytes(Rc::from(b)));
                    push!(v);
                }
                0x97 => {
                    // NEXT_BUFFER: out-of-band buffers are not in the stream.
                    push!(V::Other);
                }
                0x98 => {
                    top!();
                }
                b')' => push!(V::Tuple(Rc::new(Vec::new()))),
                b']' | b'l' => {
                    if op == b'l' {
                        let _ = pop_mark!();
                    }
                    push!(V::Other);
                }
                b'}' => push!(V::Dict(Rc::new(RefCell::new(Vec::new())))),
                b'd' => {
                    let items = pop_mark!();
                    if items.len() % 2 != 0 {
                        return inp.err("odd number of items for DICT");
                    }
                    let mut d = Vec::new();
                    for kv in items.chunks(2).take(KEEP) {
                        d.push((freeze(&kv[0]), freeze(&kv[1])));
                    }
                    push!(V::Dict(Rc::new(RefCell::new(d))));
                }
                0x8f => push!(V::Other),
                0x90 => {
                    let _ = pop_mark!();
                    top!();
                }
                0x91 => {
                    let _ = pop_mark!();
                    push!(V::Other);
                }
                b't' => {
                    let mut items = pop_mark!();
                    items.truncate(KEEP);
                    push!(V::Tuple(Rc::new(items)));
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(pop!());
                    }
                    items.reverse();
                    push!(V::Tuple(Rc::new(items)));
                }
                b'a' => {
                    pop!();
                    top!();
                }
                b'e' => {
                    let _ = pop_mark!();
                    top!();
                }
                b's' => {
                    let v = pop!();
                    let k = pop!();
                    if let V::Dict(d) = top!() {
                        // Freeze before borrowing: the value may be this very dict.
                        let item = (freeze(&k), freeze(&v));
                        let mut d = d.borrow_mut();
                        if d.len() < KEEP {
                            d.push(item);
                        }
                    }
                }
                b'u' => {
                    let items = pop_mark!();
                    if items.len() % 2 != 0 {
                        return inp.err("odd number of items for SETITEMS");
                    }
                    if let V::Dict(d) = top!() {
                        let frozen: Vec<_> = items
                            .chunks(2)
                            .take(KEEP)
                            .map(|kv| (freeze(&kv[0]), freeze(&kv[1])))
                            .collect();
                        let mut d = d.borrow_mut();
                        for item in frozen {
                            if d.len() < KEEP {
                                d.push(item);
                            }
                        }
                    }
                }
                b'p' => {
                    let l = inp.line()?;
                    let Ok(k) = String::from_utf8_lossy(&l).trim().parse::<u64>() else {
                        return Err(PErr(at, "PUT with a non-integer index".into()));
                    };
                    memo_put!(k);
                }
                b'q' => {
                    let k = inp.byte()? as u64;
                    memo_put!(k);
                }
                b'r' => {
                    let k = inp.uint(4)?;
                    memo_put!(k);
                }
                0x94 => {
                    let k = memo.len() as u64;
                    memo_put!(k);
                }
                b'g' | b'h' | b'j' => {
                    let k = match op {
                        b'g' => {
                            let l = inp.line()?;
                            match String::from_utf8_lossy(&l).trim().parse::<u64>() {
                                Ok(k) => k,
                                Err(_) => {
                                    return Err(PErr(at, "GET with a non-integer index".into()))
                                }
                            }
                        }
                        b'h' => inp.byte()? as u64,
                        _ => inp.uint(4)?,
                    };
                    let Some(v) = memo.get(&k).cloned() else {
                        return Err(PErr(at, format!("memo value not found at index {k}")));
                    };
                    push!(v);
                }
                b'c' => {
                    let module = String::from_utf8_lossy(&inp.line()?).into_owned();
                    let name = String::from_utf8_lossy(&inp.line()?).into_owned();
                    let g = self.note_global(&module, &name, at, "GLOBAL");
                    push!(V::Global(g));
                }
                0x93 => {
                    let name = pop!();
                    let module = pop!();
                    match (as_str(&module), as_str(&name)) {
                        (Some(m), Some(n)) => {
                            let g = self.note_global(&m, &n, at, "STACK_GLOBAL");
                            push!(V::Global(g));
                        }
                        (m, n) => {
                            self.out.unresolved.push((
                                at,
                                format!(
                                    "STACK_GLOBAL operands are not strings (module {}, name {})",
                                    m.unwrap_or_else(|| "<computed>".into()),
                                    n.unwrap_or_else(|| "<computed>".into())
                                ),
                            ));
                            push!(V::Other);
                        }
                    }
                }
                b'i' => {
                    let module = String::from_utf8_lossy(&inp.line()?).into_owned();
                    let name = String::from_utf8_lossy(&inp.line()?).into_owned();
                    let g = self.note_global(&module, &name, at, "INST");
                    let args = pop_mark!();
                    push!(obj(&g, V::Tuple(Rc::new(args))));
                }
                b'o' => {
                    let mut items = pop_mark!();
                    if items.is_empty() {
                        return inp.err("OBJ without a class");
                    }
                    let cls = items.remove(0);
                    push!(call(&cls, V::Tuple(Rc::new(items))));
                }
                0x82..=0x84 => {
                    let code = match op {
                        0x82 => inp.byte()? as u64,
                        0x83 => inp.uint(2)?,
                        _ => inp.uint(4)?,
                    };
                    let g = self.note_global("copyreg extension", &code.to_string(), at, "EXT");
                    push!(V::Global(g));
                }
                b'P' => {
                    inp.line()?;
                    push!(V::Other);
                }
                b'Q' => {
                    pop!();
                    push!(V::Other);
                }
                b'R' => {
                    let args = pop!();
                    let f = pop!();
                    push!(call(&f, args));
                }
                0x81 => {
                    let args = pop!();
                    let cls = pop!();
                    push!(call(&cls, args));
                }
                0x92 => {
                    let _kwargs = pop!();
                    let args = pop!();
                    let cls = pop!();
                    push!(call(&cls, args));
                }
                b'b' => {
                    let state = pop!();
                    let target = top!();
                    if let V::Obj(o) = &target {
                        *o.state.borrow_mut() = Some(freeze(&state));
                        let (m, n) = (&o.class.0, &o.class.1);
                        if normalize_module(m) == "joblib.numpy_pickle" && n == "NumpyArrayWrapper"
                        {
                            stack.pop();
                            self.joblib_array(inp, &state, nest)?;
                            push!(V::Other);
                        }
                    }
                }
                _ => {
                    return Err(PErr(at, format!("invalid opcode 0x{op:02x}")));
                }
            }
        }
    }

    /// Skips (or, for object dtypes, analyses) the raw block joblib writes after a
    /// `NumpyArrayWrapper`'s BUILD.
    fn joblib_array(&mut self, inp: &mut Input, state: &V, nest: usize) -> R<()> {
        let V::Dict(d) = state else {
            return inp.err("joblib array wrapper without a state dict");
        };
        let d = d.borrow();
        let get = |k: &str| {
            d.iter()
                .find(|(kk, _)| matches!(kk, V::Str(s) if &**s == k))
                .map(|(_, v)| v.clone())
        };
        let Some(V::Tuple(shape)) = get("shape") else {
            return inp.err("joblib array wrapper without a shape");
        };
        let mut count: u64 = 1;
        for s in shape.iter() {
            let V::Int(n) = s else {
                return inp.err("joblib array shape is not integers");
            };
            count = u64::try_from(*n)
                .ok()
                .and_then(|n| count.checked_mul(n))
                .ok_or_else(|| PErr(inp.pos, "joblib array shape overflows".into()))?;
        }
        let Some((itemsize, hasobject)) = get("dtype").as_ref().and_then(dtype_info) else {
            return inp.err("joblib array dtype not understood");
        };
        let align = get("numpy_array_alignment_bytes").is_some();
        // The wrapper's BUILD ends a frame; the array bytes are outside any frame.
        if let Some(end) = inp.frame_end {
            if inp.pos < end {
                return inp.err("joblib array data inside a pickle frame");
            }
            inp.frame_end = None;
        }
        self.out.joblib_arrays += 1;
        if hasobject {
            self.run(inp, nest + 1)?;
            return Ok(());
        }
        let start = inp.pos;
        if align {
            let pad = inp.byte()? as u64;
            inp.skip(pad)?;
        }
        let bytes = count
            .checked_mul(itemsize)
            .ok_or_else(|| PErr(inp.pos, "joblib array size overflows".into()))?;
        inp.skip(bytes)?;
        self.out.skipped.push((start, inp.pos));
        Ok(())
    }
}

/// A copy of `v` that shares no mutable node (dict, object state) with anything live.
///
/// Values stored *into* mutable nodes (dict items, `BUILD` state) are frozen copies: nothing
/// ever takes them back onto the stack, so they are never mutated, and no reference cycle can
/// form (a pickle can insert a dict into itself through the memo; with `Rc` that would leak).
/// A budget bounds the copy.
fn freeze(v: &V) -> V {
    let mut budget = 256usize;
    freeze_in(v, &mut budget)
}

fn freeze_in(v: &V, budget: &mut usize) -> V {
    if *budget == 0 {
        return V::Other;
    }
    *budget -= 1;
    match v {
        V::Dict(d) => {
            let items = d
                .borrow()
                .iter()
                .map(|(k, x)| (freeze_in(k, budget), freeze_in(x, budget)))
                .collect();
            V::Dict(Rc::new(RefCell::new(items)))
        }
        V::Tuple(t) => V::Tuple(Rc::new(t.iter().map(|x| freeze_in(x, budget)).collect())),
        V::Obj(o) => {
            let state = o.state.borrow().as_ref().map(|s| freeze_in(s, budget));
            V::Obj(Rc::new(Obj {
                class: o.class.clone(),
                args: freeze_in(&o.args, budget),
                state: RefCell::new(state),
            }))
        }
        other => other.clone(),
    }
}

fn obj(class: &G, args: V) -> V {
    V::Obj(Rc::new(Obj {
        class: class.clone(),
        args,
        state: RefCell::new(None),
    }))
}

/// The value of calling `f(*args)`: an object of class `f` when `f` is a global (for
/// `copyreg._reconstructor(cls, base, state)` the class is `cls`).
fn call(f: &V, args: V) -> V {
    match f {
        V::Global(g) => {
            if normalize_module(&g.0) == "copyreg" && g.1 == "_reconstructor" {
                if let V::Tuple(t) = &args {
                    if let Some(V::Global(cls)) = t.first() {
                        return obj(cls, args.clone());
                    }
                }
            }
            obj(g, args)
        }
        _ => V::Other,
    }
}

/// `(itemsize, hasobject)` of a pickled `numpy.dtype`.
fn dtype_info(v: &V) -> Option<(u64, bool)> {
    let V::Obj(o) = v else { return None };
    if o.class.1 != "dtype" {
        return None;
    }
    let V::Tuple(args) = &o.args else { return None };
    let code = as_str(args.first()?)?;
    let code = code.trim_start_matches(['<', '>', '|', '=']);
    let state = o.state.borrow();
    let st = match &*state {
        Some(V::Tuple(t)) => Some(t.clone()),
        _ => None,
    };
    let flags_obj = st
        .as_ref()
        .and_then(|t| t.get(7).cloned())
        .map(|f| matches!(f, V::Int(n) if n & 1 != 0))
        .unwrap_or(false);
    let hasobject = code.starts_with('O') || flags_obj;
    let elsize = st.as_ref().and_then(|t| match t.get(5) {
        Some(V::Int(n)) if *n > 0 => Some(*n as u64),
        _ => None,
    });
    let digits: String = code.chars().filter(|c| c.is_ascii_digit()).collect();
    let size = elsize.or_else(|| digits.parse::<u64>().ok().filter(|n| *n > 0));
    match size {
        Some(s) => Some((s, hasobject)),
        None if hasobject => Some((8, true)),
        None => None,
    }
}

/// Scans `src` as a pickle stream and records findings. `strict`: the content was sniffed as
/// a pickle from its bytes (a `PROTO` opcode) or named like one, so a parse error is a finding;
/// otherwise (a protocol-0 guess) a stream that fails before importing anything is ignored.
///
/// Returns whether the content is a pickle after all (see [`report`]). Text that merely starts
/// with an opcode byte is not.
pub(crate) fn scan(ctx: &mut Ctx, src: &dyn Source, loc: &Loc, strict: bool) -> bool {
    let a = analyse(src, ctx.limits);
    report(ctx, loc, &a, strict)
}

/// Whether `module` and `name` are dotted Python identifiers (what `find_class` could import).
fn importable(module: &str, name: &str) -> bool {
    let ident = |p: &str| {
        let mut c = p.chars();
        c.next().is_some_and(|f| f == '_' || f.is_alphabetic())
            && c.all(|ch| ch == '_' || ch.is_alphanumeric())
    };
    [module, name]
        .iter()
        .all(|s| !s.is_empty() && s.split('.').all(ident))
}

/// Records the findings of `a`; returns false when the content was not taken for a pickle
/// (a guess from the first byte that did not hold up), in which case nothing was recorded.
pub(crate) fn report(ctx: &mut Ctx, loc: &Loc, a: &Analysis, strict: bool) -> bool {
    // Not named like a pickle: content starting with PROTO counts when it completes a pickle
    // or imports anything; a protocol-0 guess (text that happens to start with an opcode byte)
    // only when it completes or imports something denylisted before failing.
    // A guess that never completed a pickle (random bytes, a raw tensor dump named `.bin`)
    // decodes "globals" from garbage; only names Python could import count then. A payload
    // followed by a broken stream still imports real names (`os.system`) and is reported.
    // Likewise a protocol-0 guess (text that starts with an opcode byte: "Format: ...", "(c)
    // ...") that runs into an error: plain text decodes as a pickle or two before it fails.
    let guess = !strict && (a.pickles == 0 || (!a.proto_header && a.error.is_some()));
    let globals: Vec<&GlobalRef> = a
        .globals
        .iter()
        .filter(|g| !guess || importable(&g.module, &g.name))
        .collect();
    let denylisted = globals.iter().any(|g| {
        matches!(
            classify_at(&g.module, &g.name, g.proto),
            Verdict::Malicious(_)
        )
    });
    let counts = if a.proto_header {
        !globals.is_empty()
    } else {
        denylisted
    };
    if guess && !counts && (a.unresolved.is_empty() || !a.proto_header) {
        return false;
    }
    for g in globals {
        let global = format!("{}.{}", g.module, g.name);
        match classify_with(&g.module, &g.name, g.proto, &ctx.limits.allow) {
            Verdict::Allowed => {}
            Verdict::Suspicious => ctx.add(
                loc,
                Severity::Suspicious,
                "pickle/unknown-global",
                Some(global.clone()),
                format!(
                    "{} imports {global} (offset {}), which is not on the allowlist of globals safe in ML files",
                    g.opcode, g.offset
                ),
            ),
            Verdict::Malicious(why) => ctx.add(
                loc,
                Severity::Malicious,
                "pickle/denylisted-global",
                Some(global.clone()),
                format!("{} imports {global} (offset {}): {why}", g.opcode, g.offset),
            ),
        }
    }
    for (off, what) in &a.unresolved {
        ctx.add(
            loc,
            Severity::Malicious,
            "pickle/unresolved-global",
            None,
            format!("{what} at offset {off}: the import cannot be checked"),
        );
    }
    for (off, what) in &a.anomalies {
        ctx.add(
            loc,
            Severity::Suspicious,
            "pickle/anomaly",
            None,
            format!("{what} (offset {off})"),
        );
    }
    if let Some((off, msg)) = &a.error {
        ctx.add(
            loc,
            Severity::Suspicious,
            "pickle/parse-error",
            None,
            format!("not a well-formed pickle at offset {off}: {msg}"),
        );
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn globals(b: &[u8]) -> (Vec<String>, Option<String>) {
        let a = analyse(&b, &crate::Limits::default());
        (
            a.globals
                .iter()
                .map(|g| format!("{}.{}", g.module, g.name))
                .collect(),
            a.error.map(|e| e.1),
        )
    }

    #[test]
    fn protocol0_global_and_reduce() {
        let (g, e) = globals(b"cos\nsystem\n(S'ls'\ntR.");
        assert_eq!(g, ["os.system"]);
        assert_eq!(e, None);
    }

    #[test]
    fn stack_global_from_memo() {
        // proto 4: SHORT_BINUNICODE 'os' MEMOIZE, SHORT_BINUNICODE 'system', POP both... then
        // BINGET 0 + BINUNICODE 'system' STACK_GLOBAL
        let mut p = vec![0x80, 4, 0x8c, 2];
        p.extend_from_slice(b"os");
        p.push(0x94); // memo 0
        p.push(b'0'); // pop
        p.extend_from_slice(&[b'h', 0]);
        p.push(b'X');
        p.extend_from_slice(&6u32.to_le_bytes());
        p.extend_from_slice(b"system");
        p.push(0x93);
        p.push(b'.');
        let (g, e) = globals(&p);
        assert_eq!(g, ["os.system"]);
        assert_eq!(e, None);
    }

    #[test]
    fn global_before_error_is_kept() {
        let (g, e) = globals(b"cbuiltins\nexec\n\xff");
        assert_eq!(g, ["builtins.exec"]);
        assert!(e.unwrap().contains("invalid opcode"));
    }

    /// Fuzzer find: a dict inserted into itself through the memo (`SETITEM` of `GET 0`)
    /// panicked on a double borrow, and with plain `Rc`s would form a leaking cycle.
    #[test]
    fn dict_inserted_into_itself() {
        let (_, e) = globals(b"(dp0\nI1\ng0\ns(dp1\ng1\ng1\ns.");
        assert_eq!(e, None);
    }

    /// Fuzzer find: a BYTEARRAY8 length near 2^64 inside a frame overflowed the frame check.
    #[test]
    fn huge_length_inside_frame() {
        let mut p = vec![0x80, 5, 0x95];
        p.extend_from_slice(&12u64.to_le_bytes());
        p.push(0x96);
        p.extend_from_slice(&u64::MAX.to_le_bytes());
        p.extend_from_slice(b"P..");
        let (_, e) = globals(&p);
        assert!(e.is_some());
    }

    #[test]
    fn frame_straddle_is_an_error() {
        let mut p = vec![0x80, 4, 0x95];
        p.extend_from_slice(&3u64.to_le_bytes());
        p.extend_from_slice(&[0x8c, 2, b'o', b's', b'.']);
        let (_, e) = globals(&p);
        assert!(e.unwrap().contains("frame"));
    }
}
