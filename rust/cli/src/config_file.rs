//! `duet serve --config duet.toml`: settings from a file, beside flags and environment
//! variables. Precedence: a flag beats its environment variable, which beats the file,
//! which beats the default.
//!
//! Every flag of `duet serve` is a key of the file, spelled as the flag without its dashes
//! (`--ring-timeout` is `ring_timeout`; `ring-timeout` is accepted too). A key is applied
//! by handing clap the flag it stands for, so the file is checked by the very parsers the
//! flags are: the same types, the same errors, and a flag added to `duet serve` is a file
//! key at once, with nothing to keep in step.

use std::ffi::OsString;
use std::path::Path;

use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Command};

/// The key that names the file itself: not a key of the file.
const CONFIG_ARG: &str = "config";

/// `args` with the file's settings added as flags, for each setting that neither a flag
/// nor an environment variable gives. `serve` is `duet serve`'s command, `given` what its
/// arguments alone parsed to.
///
/// # Errors
///
/// The file cannot be read, is not TOML, or has a key `duet serve` does not know or a
/// value of a shape no flag takes (a table).
pub(crate) fn apply(
    path: &Path,
    serve: &Command,
    given: &ArgMatches,
    mut args: Vec<OsString>,
) -> Result<Vec<OsString>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let table: toml::Table =
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    for (key, value) in &table {
        let id = key.replace('-', "_");
        let arg = serve
            .get_arguments()
            .find(|a| a.get_id() == id.as_str() && id != CONFIG_ARG && a.get_long().is_some())
            .ok_or_else(|| format!("{}: unknown key {key:?}", path.display()))?;
        if matches!(
            given.value_source(&id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        ) {
            continue;
        }
        let long = arg.get_long().unwrap_or(key);
        let is_switch = matches!(arg.get_action(), ArgAction::SetTrue);
        args.extend(
            flags(long, value, is_switch).map_err(|e| format!("{}: {key}: {e}", path.display()))?,
        );
    }
    Ok(args)
}

/// The command-line form of one setting: `--long=value`, once per element of an array;
/// a switch is `--long` for true and nothing for false.
fn flags(long: &str, value: &toml::Value, is_switch: bool) -> Result<Vec<OsString>, String> {
    let flag = |v: String| OsString::from(format!("--{long}={v}"));
    Ok(match value {
        toml::Value::Boolean(on) if is_switch => {
            if *on {
                vec![OsString::from(format!("--{long}"))]
            } else {
                vec![]
            }
        }
        toml::Value::String(s) => vec![flag(s.clone())],
        toml::Value::Integer(n) => vec![flag(n.to_string())],
        toml::Value::Float(x) => vec![flag(x.to_string())],
        toml::Value::Boolean(b) => vec![flag(b.to_string())],
        toml::Value::Datetime(d) => vec![flag(d.to_string())],
        toml::Value::Array(items) => items
            .iter()
            .map(|item| match item {
                toml::Value::String(s) => Ok(flag(s.clone())),
                toml::Value::Integer(n) => Ok(flag(n.to_string())),
                other => Err(format!("an array of strings or numbers, not {}", other.type_str())),
            })
            .collect::<Result<_, _>>()?,
        toml::Value::Table(_) => return Err("a value, not a table".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_become_flags() {
        let v = |s: &str| -> toml::Value {
            toml::from_str::<toml::Table>(&format!("k = {s}")).unwrap()["k"].clone()
        };
        assert_eq!(flags("grace", &v("5"), false).unwrap(), ["--grace=5"]);
        assert_eq!(flags("listen", &v("\"0.0.0.0:1\""), false).unwrap(), ["--listen=0.0.0.0:1"]);
        assert_eq!(
            flags("turn-url", &v("[\"a\", \"b\"]"), false).unwrap(),
            ["--turn-url=a", "--turn-url=b"]
        );
        assert_eq!(flags("no-turn", &v("true"), true).unwrap(), ["--no-turn"]);
        assert!(flags("no-turn", &v("false"), true).unwrap().is_empty());
        assert!(flags("x", &v("{ a = 1 }"), false).is_err());
    }
}
