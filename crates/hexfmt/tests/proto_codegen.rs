//! Checks that the committed protobuf code in `src/proto/` is exactly what prost-build
//! generates from `proto/*.proto` (compiled with protox, so no `protoc` is needed).
//! Run with `UPDATE_PROTO=1` to rewrite the committed files after editing a schema.

use std::path::{Path, PathBuf};

const SCHEMAS: [&str; 4] = ["signed", "names", "versions", "package"];

fn generate(out: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files: Vec<PathBuf> = SCHEMAS
        .iter()
        .map(|s| root.join("proto").join(format!("{s}.proto")))
        .collect();
    let descriptors = protox::compile(&files, [root.join("proto")]).expect("schemas compile");
    prost_build::Config::new()
        .out_dir(out)
        .compile_fds(descriptors)
        .expect("prost-build generates code");
}

#[test]
fn committed_protobuf_code_matches_schemas() {
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/proto");
    let scratch = std::env::temp_dir().join(format!("hexfmt-proto-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    generate(&scratch);
    let update = std::env::var_os("UPDATE_PROTO").is_some();
    let mut stale = Vec::new();
    for schema in SCHEMAS {
        let name = format!("{schema}.rs");
        let fresh = std::fs::read_to_string(scratch.join(&name)).unwrap();
        let path = committed.join(&name);
        if update {
            std::fs::write(&path, &fresh).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(fresh.as_str()) {
            stale.push(name);
        }
    }
    std::fs::remove_dir_all(&scratch).unwrap();
    assert!(
        stale.is_empty(),
        "generated protobuf code is stale: {stale:?}; run UPDATE_PROTO=1 cargo test -p hexfmt --test proto_codegen"
    );
}
