//! OpenH264 loaded at run time (`use_openh264_library`), as the mobile SDK uses it.
//!
//! Cisco's binary (2.6.0) cannot be fetched here, so the library under test is linked from
//! the very objects `openh264-sys2` compiled for the built-in codec (its 2.7 source), found
//! in this build's target directory. scripts/test runs this file twice: with the built-in codec (the default features) and without it
//! (`--no-default-features`, the mobile build), after the workspace tests compiled OpenH264.

use std::path::{Path, PathBuf};
use std::process::Command;

use duet_media::{
    matches_pattern, read_counter, use_openh264_library, CodecError, OpenH264Decoder,
    OpenH264Encoder, TestPattern, VideoDecoder, VideoEncoder, VideoEncoderConfig,
};

const PARTS: [&str; 4] = ["encoder", "decoder", "processing", "common"];

/// target/<profile>/, from this test's own path (target/<profile>/deps/<test>).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test path");
    exe.parent().and_then(Path::parent).expect("target/<profile>/deps").to_path_buf()
}

/// The newest build of openh264-sys2's four static libraries in this profile.
fn openh264_objects() -> Vec<PathBuf> {
    let build = profile_dir().join("build");
    let mut outs: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(&build)
        .expect("target/<profile>/build")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("openh264-sys2-"))
        .map(|e| e.path().join("out"))
        .filter(|out| PARTS.iter().all(|p| out.join(format!("libopenh264_{p}.a")).is_file()))
        .filter_map(|out| Some((out.metadata().ok()?.modified().ok()?, out)))
        .collect();
    outs.sort();
    let (_, out) = outs.pop().unwrap_or_else(|| {
        panic!(
            "no OpenH264 build under {}: run the workspace's tests first (scripts/test)",
            build.display()
        )
    });
    PARTS.iter().map(|p| out.join(format!("libopenh264_{p}.a"))).collect()
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("compiler");
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A shared OpenH264 2.6.0, as Cisco ships it, in a directory of its own.
fn openh264_library(dir: &Path) -> PathBuf {
    let so = dir.join("libopenh264.so");
    run(Command::new("c++")
        .args(["-shared", "-o"])
        .arg(&so)
        .arg("-Wl,--whole-archive")
        .args(openh264_objects())
        .args(["-Wl,--no-whole-archive", "-lpthread"]));
    so
}

/// A shared library made of `c_source`.
fn c_library(dir: &Path, name: &str, c_source: &str) -> PathBuf {
    let c = dir.join(format!("{name}.c"));
    std::fs::write(&c, c_source).expect("write the C source");
    let so = dir.join(format!("lib{name}.so"));
    run(Command::new("cc").args(["-shared", "-fPIC", "-o"]).arg(&so).arg(&c));
    so
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("duet-openh264-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

fn config() -> VideoEncoderConfig {
    VideoEncoderConfig { width: 320, height: 240, fps: 30.0, max_bitrate_bps: 300_000 }
}

fn mapped(path: &Path) -> bool {
    let maps = std::fs::read_to_string("/proc/self/maps").expect("/proc/self/maps");
    maps.contains(&*path.to_string_lossy())
}

fn unavailable(result: Result<impl Sized, CodecError>) -> String {
    match result {
        Err(CodecError::Unavailable(why)) => why,
        Err(other) => panic!("expected Unavailable, got {other:?}"),
        Ok(_) => panic!("expected Unavailable, got a codec"),
    }
}

#[test]
fn a_loaded_openh264_carries_verified_frames_and_the_chosen_file_is_the_one_used() {
    let dir = scratch("loaded");
    let so = openh264_library(&dir);
    assert!(!mapped(&so));
    // The mobile build before the app names a library (no test of this file chooses one
    // but this, so this runs first): no codec, a clear reason, no panic.
    #[cfg(not(feature = "built-in-openh264"))]
    assert!(unavailable(OpenH264Decoder::new()).contains("not built into this library"));
    assert_eq!(use_openh264_library(&so).expect("load"), "2.7.0");

    let mut enc = OpenH264Encoder::new(config()).expect("encoder");
    let mut dec = OpenH264Decoder::new().expect("decoder");
    assert!(mapped(&so), "the codecs do not run the loaded library");
    let pattern = TestPattern::new(320, 240);
    for n in 0..30 {
        let au = enc.encode(&pattern.frame(n, u64::from(n)), false).unwrap().expect("frame");
        let picture = dec.decode(&au.data, u64::from(n)).unwrap().expect("picture");
        assert_eq!(read_counter(&picture), Some(n));
        assert!(matches_pattern(&picture, n), "frame {n}");
    }

    // The codecs made after another choice run the newly chosen file.
    let copy = dir.join("libopenh264-copy.so");
    std::fs::copy(&so, &copy).unwrap();
    assert_eq!(use_openh264_library(&copy).expect("load the copy"), "2.7.0");
    assert!(!mapped(&copy), "checking a library left it loaded");
    let mut enc = OpenH264Encoder::new(config()).expect("encoder");
    assert!(mapped(&copy), "a new codec does not run the chosen library");
    assert!(enc.encode(&pattern.frame(0, 0), true).unwrap().is_some());
    std::fs::remove_dir_all(&dir).unwrap();
}

const ENTRY_POINTS: &str = r"
typedef struct { unsigned major, minor, revision, reserved; } Version;
int WelsCreateSVCEncoder(void **e) { *e = 0; return 1; }
void WelsDestroySVCEncoder(void *e) {}
int WelsGetDecoderCapability(void *c) { return 1; }
long WelsCreateDecoder(void **d) { *d = 0; return 1; }
void WelsDestroyDecoder(void *d) {}
Version WelsGetCodecVersion(void) { Version v = {2, 3, 1, 0}; return v; }
";

#[test]
fn another_openh264_release_is_refused() {
    let dir = scratch("release");
    let source = format!(
        "{ENTRY_POINTS}void WelsGetCodecVersionEx(Version *v) {{ *v = WelsGetCodecVersion(); }}\n"
    );
    let so = c_library(&dir, "openh264", &source);
    let why = unavailable(use_openh264_library(&so));
    assert!(why.contains("OpenH264 2.3.1") && why.contains("2.6 to 2.7 only"), "{why}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_library_that_is_not_openh264_is_refused() {
    let dir = scratch("other");
    let so = c_library(&dir, "other", ENTRY_POINTS);
    let why = unavailable(use_openh264_library(&so));
    assert!(why.contains("not OpenH264 (no WelsGetCodecVersionEx)"), "{why}");
    let why = unavailable(use_openh264_library(dir.join("missing.so")));
    assert!(why.contains("cannot be loaded"), "{why}");
    std::fs::remove_dir_all(&dir).unwrap();
}
