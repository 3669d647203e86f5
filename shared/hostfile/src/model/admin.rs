//! The status page's admin key (`admin-key-file` in `[dhcp]` and `[lb]`).

use std::path::PathBuf;

use serde::Serialize;

/// The status page's admin key, read from its file at every load and reload. Its `Debug` and
/// serialized forms name the file, never the key.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminKey {
    /// The file it was read from.
    pub file: PathBuf,
    /// The key: the file's text without surrounding white space.
    pub secret: Vec<u8>,
}

impl std::fmt::Debug for AdminKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AdminKey({})", self.file.display())
    }
}

impl Serialize for AdminKey {
    fn serialize<Z: serde::Serializer>(&self, s: Z) -> Result<Z::Ok, Z::Error> {
        s.serialize_str(&self.file.display().to_string())
    }
}
