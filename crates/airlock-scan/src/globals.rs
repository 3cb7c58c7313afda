//! Verdicts on the globals a pickle imports, allowlist first.
//!
//! Unpickling `module.name` imports `module` and looks up `name`; a `REDUCE` then calls it.
//! Rather than guess what is dangerous, only exact `(module, name)` pairs known to appear in
//! ordinary ML files pass ([`ALLOW`]). Everything else is at least suspicious; the denylist
//! ([`DENY_MODULES`], [`DENY_PAIRS`]) marks what is known to execute code, touch the system or
//! the network, or load nested pickles as malicious. A dotted `name` (protocol 4 resolves
//! `a.b` by attribute walk, e.g. `builtins` + `getattr.__self__`) is malicious unless the exact
//! pair is allowlisted.

/// The outcome for one global.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    Suspicious,
    Malicious(&'static str),
}

/// Exact pairs that pass. Module names are normalized first ([`normalize_module`]).
pub const ALLOW: &[(&str, &str)] = &[
    ("collections", "OrderedDict"),
    ("collections", "defaultdict"),
    ("collections", "Counter"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "slice"),
    ("builtins", "bytearray"),
    ("builtins", "bytes"),
    ("builtins", "complex"),
    ("builtins", "range"),
    // Python 2's `__builtin__.xrange`, which the unpickler maps to `range`.
    ("builtins", "xrange"),
    ("builtins", "list"),
    ("builtins", "dict"),
    ("builtins", "tuple"),
    ("builtins", "int"),
    ("builtins", "float"),
    ("builtins", "bool"),
    ("builtins", "str"),
    ("builtins", "object"),
    ("copyreg", "_reconstructor"),
    ("_codecs", "encode"),
    ("datetime", "datetime"),
    ("datetime", "date"),
    ("datetime", "time"),
    ("datetime", "timedelta"),
    ("datetime", "timezone"),
    ("numpy", "dtype"),
    ("numpy", "ndarray"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy.dtypes", "Float64DType"),
    ("numpy.dtypes", "Float32DType"),
    ("numpy.dtypes", "Float16DType"),
    ("numpy.dtypes", "Int64DType"),
    ("numpy.dtypes", "Int32DType"),
    ("numpy.dtypes", "Int16DType"),
    ("numpy.dtypes", "Int8DType"),
    ("numpy.dtypes", "UInt8DType"),
    ("numpy.dtypes", "BoolDType"),
    ("numpy.random._pickle", "__randomstate_ctor"),
    ("numpy.random._pickle", "__bit_generator_ctor"),
    ("numpy.random._pickle", "__generator_ctor"),
    ("joblib.numpy_pickle", "NumpyArrayWrapper"),
    ("torch._utils", "_rebuild_tensor"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_tensor_v3"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch._utils", "_rebuild_parameter_with_state"),
    ("torch._utils", "_rebuild_sparse_tensor"),
    ("torch._utils", "_rebuild_sparse_csr_tensor"),
    ("torch._utils", "_rebuild_qtensor"),
    ("torch._utils", "_rebuild_device_tensor_from_numpy"),
    ("torch._utils", "_rebuild_meta_tensor_no_storage"),
    ("torch._utils", "_rebuild_wrapper_subclass"),
    ("torch._utils", "_rebuild_nested_tensor"),
    ("torch._utils", "_rebuild_device_tensor_from_cpu_tensor"),
    ("torch._tensor", "_rebuild_from_type_v2"),
    ("torch._tensor", "_rebuild_from_type"),
    ("torch", "Size"),
    ("torch", "device"),
    ("torch", "Tensor"),
    ("torch.nn.parameter", "Parameter"),
    ("torch", "FloatStorage"),
    ("torch", "DoubleStorage"),
    ("torch", "HalfStorage"),
    ("torch", "BFloat16Storage"),
    ("torch", "LongStorage"),
    ("torch", "IntStorage"),
    ("torch", "ShortStorage"),
    ("torch", "CharStorage"),
    ("torch", "ByteStorage"),
    ("torch", "BoolStorage"),
    ("torch", "ComplexFloatStorage"),
    ("torch", "ComplexDoubleStorage"),
    ("torch", "QInt8Storage"),
    ("torch", "QUInt8Storage"),
    ("torch", "QInt32Storage"),
    ("torch", "UntypedStorage"),
    ("torch.storage", "UntypedStorage"),
    ("torch", "float32"),
    ("torch", "float64"),
    ("torch", "float16"),
    ("torch", "bfloat16"),
    ("torch", "int64"),
    ("torch", "int32"),
    ("torch", "int16"),
    ("torch", "int8"),
    ("torch", "uint8"),
    ("torch", "bool"),
    ("torch", "complex64"),
    ("torch", "complex128"),
    ("torch", "float8_e4m3fn"),
    ("torch", "float8_e5m2"),
    ("torch", "strided"),
    ("torch", "sparse_coo"),
    ("torch", "per_tensor_affine"),
];

/// Modules that are malicious whatever name is taken from them (and their submodules).
pub const DENY_MODULES: &[&str] = &[
    "os",
    "posix",
    "nt",
    "subprocess",
    "sys",
    "runpy",
    "code",
    "codeop",
    "marshal",
    "types",
    "importlib",
    "pkgutil",
    "imp",
    "pickle",
    "_pickle",
    "cPickle",
    "pickletools",
    "dill",
    "cloudpickle",
    "joblib",
    "shelve",
    "socket",
    "_socket",
    "ssl",
    "http",
    "urllib",
    "urllib2",
    "urllib3",
    "httplib",
    "requests",
    "ftplib",
    "smtplib",
    "telnetlib",
    "xmlrpc",
    "ctypes",
    "_ctypes",
    "cffi",
    "shutil",
    "pip",
    "setuptools",
    "webbrowser",
    "timeit",
    "cProfile",
    "profile",
    "pdb",
    "bdb",
    "trace",
    "pty",
    "commands",
    "multiprocessing",
    "asyncio",
    "signal",
    "torch.hub",
    "torch.jit",
    "torch.serialization",
    "torch._dynamo",
    "torch._inductor",
    "torch.utils.cpp_extension",
    "_io",
    "io",
    "tempfile",
    "glob",
    "zipimport",
    "linecache",
    "site",
    "venv",
    "ensurepip",
    "distutils",
];

/// Single names that are malicious.
pub const DENY_PAIRS: &[(&str, &str)] = &[
    ("builtins", "eval"),
    ("builtins", "exec"),
    ("builtins", "compile"),
    ("builtins", "open"),
    ("builtins", "getattr"),
    ("builtins", "setattr"),
    ("builtins", "delattr"),
    ("builtins", "__import__"),
    ("builtins", "globals"),
    ("builtins", "locals"),
    ("builtins", "vars"),
    ("builtins", "input"),
    ("builtins", "breakpoint"),
    ("builtins", "help"),
    ("builtins", "memoryview"),
    ("builtins", "apply"),
    ("builtins", "execfile"),
    ("builtins", "file"),
    ("builtins", "reload"),
    ("operator", "attrgetter"),
    ("operator", "itemgetter"),
    ("operator", "methodcaller"),
    ("_operator", "attrgetter"),
    ("_operator", "itemgetter"),
    ("_operator", "methodcaller"),
    ("functools", "partial"),
    ("functools", "reduce"),
    ("torch", "load"),
    ("torch", "hub"),
    ("torch", "jit"),
    ("torch", "compile"),
    ("torch", "_C"),
    ("torch", "ops"),
    ("torch.storage", "_load_from_bytes"),
    ("numpy", "load"),
    ("numpy", "loads"),
    ("numpy.lib.npyio", "load"),
    ("numpy", "fromfile"),
    ("numpy.testing._private.utils", "runstring"),
    ("copyreg", "_reconstruct"),
];

/// Maps Python 2 module names the unpickler translates (`fix_imports`) to Python 3 ones.
pub fn normalize_module(module: &str) -> &str {
    match module {
        "__builtin__" | "exceptions" => "builtins",
        "copy_reg" => "copyreg",
        "cPickle" => "pickle",
        "urllib2" => "urllib.request",
        "httplib" => "http.client",
        "commands" => "subprocess",
        other => other,
    }
}

fn in_module(module: &str, root: &str) -> bool {
    module == root
        || (module.len() > root.len()
            && module.starts_with(root)
            && module.as_bytes()[root.len()] == b'.')
}

/// The verdict for `module.name` imported by a pickle with `PROTO` `proto` (the highest seen
/// in the stream so far). Below protocol 4 a dotted name does not walk attributes (CPython's
/// `find_class` uses a plain `getattr`), so it is an unknown global, not a traversal.
pub fn classify_at(module: &str, name: &str, proto: u8) -> Verdict {
    match classify(module, name) {
        Verdict::Malicious(DOTTED) if proto < 4 => Verdict::Suspicious,
        v => v,
    }
}

/// [`classify_at`] with the built-in data classes ([`crate::allow::AllowList::builtin`]) and
/// an operator list `extra` also admitted. A listed global only turns `Suspicious` into
/// `Allowed`: a denylisted or dotted (attribute-walking) one stays malicious whatever a list
/// says.
pub fn classify_with(
    module: &str,
    name: &str,
    proto: u8,
    extra: &crate::allow::AllowList,
) -> Verdict {
    match classify_at(module, name, proto) {
        Verdict::Suspicious
            if !name.contains('.')
                && (crate::allow::AllowList::builtin().contains(module, name)
                    || extra.contains(module, name)) =>
        {
            Verdict::Allowed
        }
        v => v,
    }
}

const DOTTED: &str = "dotted name that is not exactly allowlisted";

/// The verdict for `module.name`, assuming protocol 4 or later.
pub fn classify(module: &str, name: &str) -> Verdict {
    let module = normalize_module(module);
    if ALLOW.contains(&(module, name)) {
        return Verdict::Allowed;
    }
    if DENY_MODULES.iter().any(|m| in_module(module, m)) {
        return Verdict::Malicious("module is on the denylist");
    }
    let first = name.split('.').next().unwrap_or(name);
    if DENY_PAIRS.contains(&(module, name)) || DENY_PAIRS.contains(&(module, first)) {
        return Verdict::Malicious("global is on the denylist");
    }
    if name.contains('.') {
        return Verdict::Malicious(DOTTED);
    }
    if module.is_empty() || name.is_empty() {
        return Verdict::Malicious("empty module or name");
    }
    Verdict::Suspicious
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        assert_eq!(classify("collections", "OrderedDict"), Verdict::Allowed);
        assert_eq!(classify("__builtin__", "set"), Verdict::Allowed);
        assert!(matches!(classify("posix", "system"), Verdict::Malicious(_)));
        assert!(matches!(classify("os.path", "join"), Verdict::Malicious(_)));
        assert!(matches!(
            classify("builtins", "getattr"),
            Verdict::Malicious(_)
        ));
        assert!(matches!(
            classify("torch._utils", "_rebuild_tensor.__globals__"),
            Verdict::Malicious(_)
        ));
        assert!(matches!(classify("torch", "load"), Verdict::Malicious(_)));
        assert_eq!(
            classify("sklearn.linear_model", "Ridge"),
            Verdict::Suspicious
        );
        assert!(matches!(classify("osx", "x"), Verdict::Suspicious));
        // Java service files read as protocol-0 GLOBALs: a dotted name below protocol 4
        // cannot traverse; from protocol 4 on it can.
        assert_eq!(
            classify_at("om.google.api", "com.google.api.Provider", 0),
            Verdict::Suspicious
        );
        assert!(matches!(
            classify_at("torch._utils", "_rebuild_tensor.__globals__", 4),
            Verdict::Malicious(_)
        ));
        assert!(matches!(
            classify_at("os", "path.join", 2),
            Verdict::Malicious(_)
        ));
    }

    #[test]
    fn data_classes_pass_and_never_hide_the_denylist() {
        use crate::allow::AllowList;
        let none = AllowList::empty();
        assert_eq!(
            classify_with("sklearn.pipeline", "Pipeline", 4, &none),
            Verdict::Allowed
        );
        assert_eq!(
            classify_with(
                "sklearn.linear_model._logistic",
                "LogisticRegression",
                2,
                &none
            ),
            Verdict::Allowed
        );
        // Not on the built-in list: still suspicious until an operator lists it.
        assert_eq!(
            classify_with("corp.models", "Scorer", 4, &none),
            Verdict::Suspicious
        );
        let mine = AllowList::parse("corp.models.Scorer\n").unwrap();
        assert_eq!(
            classify_with("corp.models", "Scorer", 4, &mine),
            Verdict::Allowed
        );
        assert_eq!(
            classify_with("corp.models", "Other", 4, &mine),
            Verdict::Suspicious
        );
        // Attribute walks through a listed class are not the class.
        assert!(matches!(
            classify_with(
                "sklearn.pipeline",
                "Pipeline.__init__.__globals__",
                4,
                &none
            ),
            Verdict::Malicious(_)
        ));
        for (m, n) in [("os", "system"), ("posix", "system"), ("builtins", "eval")] {
            assert!(matches!(
                classify_with(m, n, 4, &mine),
                Verdict::Malicious(_)
            ));
        }
    }
}
