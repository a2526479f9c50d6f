//! The commented node.toml that `abgp init` writes (template.toml): every
//! option with its default, so the file documents itself. Tests keep it in
//! step with the defaults of [`super::sections`] and with the key tables
//! of docs/operations.md.

use super::values::AsnSetting;

/// The template text with its placeholders (`@ASN@`, `@CERT@`,
/// `@FEDERATION@`) still in.
pub const TEMPLATE: &str = include_str!("template.toml");

/// The file `abgp init` writes: the template with the ASN, the matching
/// certificate source and the federation filled in.
pub fn template(asn: AsnSetting, federation: &str) -> String {
    let (asn_line, cert_line) = match asn {
        AsnSetting::Derived => ("asn = \"derived\"".to_string(), "certificate = \"derived\""),
        AsnSetting::Number(a) => (format!("asn = {}", a.0), "certificate = \"self-signed\""),
    };
    TEMPLATE
        .replace("@ASN@", &asn_line)
        .replace("@CERT@", cert_line)
        .replace("@FEDERATION@", &format!("{federation:?}"))
}
