//! Where OpenH264 comes from: compiled into this library (the `built-in-openh264` feature),
//! or a shared library loaded at run time.
//!
//! The mobile SDK leaves OpenH264 out (about 1.3 MB of the library, and on Android the C++
//! runtime it needs): VideoToolbox and MediaCodec are its default codecs, and OpenH264 is only
//! their fallback. An app that wants that fallback ships or downloads OpenH264 as a shared
//! library (Cisco's binary, which is what Cisco's patent licence covers) and names it with
//! [`use_openh264_library`]. Without a named library, the platform's usual file name is tried
//! through the loader's search path (on Android, the app's own native libraries).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use openh264::OpenH264API;
use openh264_sys2::libloading::APILoader;
use openh264_sys2::OpenH264Version;

use super::CodecError;

/// The OpenH264 releases the `openh264-sys2` bindings read correctly: Cisco's 2.6.0 binaries
/// (the crate's list of known builds) and the 2.7 source it compiles. Structures changed
/// between minor releases (2.6 grew `SLayerBSInfo`: Debian's 2.3.1, read through these
/// bindings, returned garbage and crashed), so any other release would be read wrongly.
const SUPPORTED_MAJOR: u32 = 2;
const SUPPORTED_MINORS: std::ops::RangeInclusive<u32> = 6..=7;

/// The file the platform's loader finds when the app names none.
#[cfg(all(not(feature = "built-in-openh264"), target_vendor = "apple"))]
const DEFAULT_FILE_NAME: &str = "libopenh264.dylib";
#[cfg(all(not(feature = "built-in-openh264"), not(target_vendor = "apple")))]
const DEFAULT_FILE_NAME: &str = "libopenh264.so";

/// The library `use_openh264_library` accepted; every later codec loads it again (the loader
/// counts references, so that costs a symbol lookup, not a second copy).
static CHOSEN: Mutex<Option<PathBuf>> = Mutex::new(None);

fn chosen() -> MutexGuard<'static, Option<PathBuf>> {
    // A path is replaced whole: a panic elsewhere cannot leave it half written.
    CHOSEN.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Loads the OpenH264 shared library at `path`, checks that it is the release this build
/// speaks to, and makes it the OpenH264 of every codec made from now on (calls already up
/// keep theirs). Returns its version as "major.minor.revision".
///
/// # Errors
///
/// `Unavailable` when the file cannot be loaded, lacks one of OpenH264's entry points, or is
/// another release than 2.6 or 2.7; the previously chosen library (or the built-in one) stays.
pub fn use_openh264_library(path: impl AsRef<Path>) -> Result<String, CodecError> {
    let path = path.as_ref();
    let (_, version) = load(path)?;
    *chosen() = Some(path.to_path_buf());
    Ok(version)
}

/// The OpenH264 a new encoder or decoder uses: the library the app chose, else the built-in
/// one, else the platform's usual file name.
pub(super) fn api() -> Result<OpenH264API, CodecError> {
    if let Some(path) = chosen().clone() {
        return load(&path).map(|(api, _)| api);
    }
    #[cfg(feature = "built-in-openh264")]
    {
        Ok(OpenH264API::from_source())
    }
    #[cfg(not(feature = "built-in-openh264"))]
    {
        load(Path::new(DEFAULT_FILE_NAME)).map(|(api, _)| api).map_err(|e| {
            CodecError::Unavailable(format!(
                "OpenH264 is not built into this library and none was loaded \
                 (use_openh264_library): {e}"
            ))
        })
    }
}

fn load(path: &Path) -> Result<(OpenH264API, String), CodecError> {
    let unavailable = |why: String| CodecError::Unavailable(format!("{}: {why}", path.display()));
    // SAFETY: loading runs the library's initialisers, as any dlopen does; the app vouches
    // for the file by naming it. Its entry points are only called below after they were all
    // found, and the codecs only after its version matched the bindings' layout.
    let loader = unsafe { APILoader::new(path.as_os_str()) }
        .map_err(|e| unavailable(format!("cannot be loaded ({e})")))?;
    let entry_points = [
        ("WelsCreateSVCEncoder", loader.WelsCreateSVCEncoder.is_ok()),
        ("WelsDestroySVCEncoder", loader.WelsDestroySVCEncoder.is_ok()),
        ("WelsGetDecoderCapability", loader.WelsGetDecoderCapability.is_ok()),
        ("WelsCreateDecoder", loader.WelsCreateDecoder.is_ok()),
        ("WelsDestroyDecoder", loader.WelsDestroyDecoder.is_ok()),
        ("WelsGetCodecVersion", loader.WelsGetCodecVersion.is_ok()),
        ("WelsGetCodecVersionEx", loader.WelsGetCodecVersionEx.is_ok()),
    ];
    // The crate's wrappers panic on a missing entry point: refuse such a library up front.
    if let Some((missing, _)) = entry_points.iter().find(|(_, found)| !found) {
        return Err(unavailable(format!("not OpenH264 (no {missing})")));
    }
    let mut version = OpenH264Version { uMajor: 0, uMinor: 0, uRevision: 0, uReserved: 0 };
    // SAFETY: present (checked above); it only writes the four integers of `version`.
    unsafe { loader.WelsGetCodecVersionEx(&mut version) };
    let text = format!("{}.{}.{}", version.uMajor, version.uMinor, version.uRevision);
    if version.uMajor != SUPPORTED_MAJOR || !SUPPORTED_MINORS.contains(&version.uMinor) {
        return Err(unavailable(format!(
            "OpenH264 {text}; this build speaks to OpenH264 {SUPPORTED_MAJOR}.{} to \
             {SUPPORTED_MAJOR}.{} only",
            SUPPORTED_MINORS.start(),
            SUPPORTED_MINORS.end()
        )));
    }
    Ok((OpenH264API::Libloading(loader), text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_is_unavailable_and_changes_nothing() {
        let before = chosen().clone();
        let err = use_openh264_library("/nonexistent/libopenh264.so").unwrap_err();
        assert!(
            matches!(&err, CodecError::Unavailable(why) if why.contains("cannot be loaded")),
            "{err:?}"
        );
        assert_eq!(*chosen(), before);
    }
}
