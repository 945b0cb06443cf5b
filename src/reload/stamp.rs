//! Content stamps: a hash of every file a runtime was built from, so a file event that changed
//! none of them (another file in the same directory, an editor's swap file) causes no reload.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Hash of a list of files: each path with its bytes, or with the reason it cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp([u8; 32]);

impl Stamp {
    /// Reads every file now and hashes paths and contents in order.
    pub fn of(files: &[PathBuf]) -> Stamp {
        let mut h = Sha256::new();
        for f in files {
            let path = f.as_os_str().as_encoded_bytes();
            h.update((path.len() as u64).to_le_bytes());
            h.update(path);
            match std::fs::read(f) {
                Ok(bytes) => {
                    h.update([1]);
                    h.update((bytes.len() as u64).to_le_bytes());
                    h.update(&bytes);
                }
                Err(e) => {
                    h.update([0]);
                    h.update(format!("{:?}", e.kind()).as_bytes());
                }
            }
        }
        Stamp(h.finalize().into())
    }
}

/// The files a reload reads first: the root configuration file, then everything the serving
/// runtime read (includes and key files), without repeats.
pub fn inputs(root: &Path, runtime_files: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = vec![root.to_path_buf()];
    for f in runtime_files {
        if !out.contains(f) {
            out.push(f.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_changes_with_content_and_not_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.yaml");
        std::fs::write(&a, "x: 1\n").unwrap();
        let files = vec![a.clone()];
        let first = Stamp::of(&files);
        assert_eq!(first, Stamp::of(&files));
        std::fs::write(dir.path().join("other.txt"), "unrelated").unwrap();
        assert_eq!(first, Stamp::of(&files));
        std::fs::write(&a, "x: 2\n").unwrap();
        assert_ne!(first, Stamp::of(&files));
        std::fs::remove_file(&a).unwrap();
        assert_ne!(first, Stamp::of(&files));
    }

    #[test]
    fn inputs_start_with_the_root_and_hold_each_file_once() {
        let root = PathBuf::from("c/gateway.yaml");
        let files = vec![root.clone(), PathBuf::from("c/roles.yaml")];
        assert_eq!(
            inputs(&root, &files),
            vec![root.clone(), PathBuf::from("c/roles.yaml")]
        );
    }
}
