//! `include`/`exclude` patterns for model files: `*` (any run within one path segment), `?`
//! (one character), `**` (any number of whole segments). Patterns without a `/` match the file
//! name in any directory, like the Hugging Face Hub's `allow_patterns`.

/// Which files of a repository to take.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

impl Filter {
    pub fn new(include: &[String], exclude: &[String]) -> Self {
        Filter {
            include: include.to_vec(),
            exclude: exclude.to_vec(),
        }
    }

    /// Kept when it matches an include pattern (or there are none) and no exclude pattern.
    pub fn keeps(&self, path: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|p| matches(p, path)))
            && !self.exclude.iter().any(|p| matches(p, path))
    }
}

/// Does `pattern` match the `/`-separated `path`?
pub fn matches(pattern: &str, path: &str) -> bool {
    if !pattern.contains('/') {
        let name = path.rsplit('/').next().unwrap_or(path);
        return segment(pattern.as_bytes(), name.as_bytes());
    }
    let p: Vec<&str> = pattern.split('/').collect();
    let s: Vec<&str> = path.split('/').collect();
    segments(&p, &s)
}

fn segments(p: &[&str], s: &[&str]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((&"**", rest)) => (0..=s.len()).any(|k| segments(rest, &s[k..])),
        Some((first, rest)) => {
            !s.is_empty() && segment(first.as_bytes(), s[0].as_bytes()) && segments(rest, &s[1..])
        }
    }
}

/// Wildcard match within one segment (iterative, no backtracking blow-up).
fn segment(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(matches("*.safetensors", "model.safetensors"));
        assert!(matches("*.safetensors", "sub/model-00001.safetensors"));
        assert!(!matches("*.safetensors", "model.bin"));
        assert!(matches("onnx/*", "onnx/model.onnx"));
        assert!(!matches("onnx/*", "onnx/q/model.onnx"));
        assert!(matches("onnx/**", "onnx/q/model.onnx"));
        assert!(matches("**/config.json", "config.json"));
        assert!(matches("model-?????.bin", "model-00001.bin"));
        let f = Filter::new(
            &["*.json".into(), "*.safetensors".into()],
            &["*optimizer*".into()],
        );
        assert!(f.keeps("config.json") && f.keeps("a/model.safetensors"));
        assert!(!f.keeps("optimizer.safetensors") && !f.keeps("pytorch_model.bin"));
        assert!(Filter::default().keeps("anything"));
    }
}
