//! A released contract version is frozen: its files never change.

/// SHA-256 of each file of each released version. A breaking change goes
/// into a new version directory beside these; never edit a released one.
const RELEASED: &[(&str, &str)] = &[
    (
        "v0.1.0/vigil-plugin.wit",
        "8c96b04f0a6d568c73e390bb12294c7a1e11451a4f9546ee09bdd8118feb8a57",
    ),
    (
        "v0.2.0/vigil-plugin.wit",
        "d1b444de3d5802a07e677c09e4d820a0931a741ce5cd056012f1849763ff1db7",
    ),
    (
        "v0.3.0/vigil-plugin.wit",
        "a70df82f40010a5e9f044ff6b83b52955be67c4d1e75df2e499d7e219db895be",
    ),
    (
        "v0.4.0/vigil-plugin.wit",
        "d2f71dd1a716ca24443fbbee37a5deed959bec6cea6541602da7174de05dc068",
    ),
    (
        "v0.5.0/vigil-plugin.wit",
        "7912590655ed05c5c414012dec369df77f57ac80b69886e380208e270ad9683f",
    ),
    (
        "v0.6.0/vigil-plugin.wit",
        "4a6ad7f44a622f6c52909dac0d595a40d2f8b8637ecd28675644293241ce3db5",
    ),
    (
        "v0.7.0/vigil-plugin.wit",
        "fb0694c5776af6911396d8cdf217e13065469682093fd2fd9aed65095361adfa",
    ),
];

#[test]
fn released_contract_versions_are_unchanged() {
    let wit = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit");
    for (file, expected) in RELEASED {
        let bytes = std::fs::read(wit.join(file)).unwrap();
        assert_eq!(
            vigil_host::runtime::digest(&bytes),
            *expected,
            "wit/{file} is part of a released contract and must not change; add a new version instead"
        );
    }
}
