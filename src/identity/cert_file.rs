//! Certificate files: one ASN certificate, encoded exactly as the wire
//! protocol encodes it in OPEN (docs/wire.md), so a file and a message can
//! be checked with the same code. `abgp asn issue` writes them; a node
//! names its own in `node.certificate`.

use std::io::Write;
use std::path::Path;

use crate::core::proof::AsnCert;

/// Larger than any certificate; a bigger file is not one.
const MAX_FILE_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum CertFileError {
    #[error("certificate file {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("certificate file {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Reads and decodes a certificate file. The signature is not checked
/// here: that is the trust store's job, with its anchors and clock.
pub fn read_cert_file(path: &Path) -> Result<AsnCert, CertFileError> {
    let err = |reason: String| CertFileError::Read {
        path: path.display().to_string(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    if bytes.len() > MAX_FILE_BYTES {
        return Err(err(format!(
            "{} bytes; a certificate is far smaller than {MAX_FILE_BYTES}",
            bytes.len()
        )));
    }
    let v: ciborium::Value =
        ciborium::from_reader(bytes.as_slice()).map_err(|e| err(format!("not CBOR: {e}")))?;
    crate::wire::schema::decode_cert(&v).map_err(|e| err(e.to_string()))
}

/// Writes a certificate file, refusing to replace an existing one (a
/// certificate is handed to a node operator; overwriting one by mistake
/// would silently change which key an ASN belongs to).
pub fn write_cert_file(path: &Path, cert: &AsnCert) -> Result<(), CertFileError> {
    let err = |source: std::io::Error| CertFileError::Write {
        path: path.display().to_string(),
        source,
    };
    let mut bytes = Vec::new();
    ciborium::into_writer(&crate::wire::schema::encode_cert(cert), &mut bytes)
        .map_err(|e| err(std::io::Error::other(e.to_string())))?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(err)?;
    f.write_all(&bytes).map_err(err)?;
    f.sync_all().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ids::{Asn, Millis};
    use crate::identity::{NodeKey, issue_cert};

    #[test]
    fn a_written_certificate_reads_back_identically_and_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n.cert");
        let authority = NodeKey::from_seed(&[1; 32]);
        let node = NodeKey::from_seed(&[2; 32]).node_id();
        let cert = issue_cert(&authority, node, Asn(65010), Millis(1), Millis(2)).unwrap();
        write_cert_file(&path, &cert).unwrap();
        assert_eq!(read_cert_file(&path).unwrap(), cert);
        assert!(matches!(
            write_cert_file(&path, &cert),
            Err(CertFileError::Write { .. })
        ));
    }

    #[test]
    fn garbage_and_oversized_files_are_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk");
        std::fs::write(&junk, b"\xff\xff not cbor").unwrap();
        let e = read_cert_file(&junk).unwrap_err().to_string();
        assert!(e.contains("junk"), "{e}");
        let big = dir.path().join("big");
        std::fs::write(&big, vec![0u8; MAX_FILE_BYTES + 1]).unwrap();
        let e = read_cert_file(&big).unwrap_err().to_string();
        assert!(e.contains("far smaller"), "{e}");
        let wrong = dir.path().join("wrong");
        let mut b = Vec::new();
        ciborium::into_writer(&ciborium::Value::Text("hello".into()), &mut b).unwrap();
        std::fs::write(&wrong, b).unwrap();
        assert!(read_cert_file(&wrong).is_err());
    }
}
