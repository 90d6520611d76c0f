//! Small checks shared by the configuration stages: durations within a range, credentials,
//! identifiers and URLs for the intensity providers, and embodied-emission settings. Every
//! rejection names its flag.

use std::path::Path;
use std::time::Duration;

use super::{invalid, ConfigError, ConfigWarning};
use crate::carbon::embodied::{Amortisation, DEFAULT_LIFETIME_YEARS};
use crate::carbon::http;
use crate::carbon::secret::{self, Secret, SecretError};
use crate::cli::{Cli, EmbodiedFlags};
use crate::duration;

/// Largest accepted `--embodied.kg-per-gpu` (a whole HGX baseboard is a few tonnes at most).
const MAX_KG_PER_GPU: f64 = 100_000.0;
/// Largest accepted `--embodied.host-kg` (a rack-scale system is a few tonnes at most).
const MAX_KG_PER_HOST: f64 = 100_000.0;

pub(super) fn embodied(f: &EmbodiedFlags) -> Result<Option<Amortisation>, ConfigError> {
    let years = f.lifetime_years.unwrap_or(DEFAULT_LIFETIME_YEARS);
    if !(years > 0.0 && years <= 50.0) {
        return Err(invalid(
            "embodied.lifetime-years",
            years,
            "must be above 0 and at most 50",
        ));
    }
    match f.kg_per_gpu {
        None if f.lifetime_years.is_some() && f.host_kg.is_none() => Err(invalid(
            "embodied.lifetime-years",
            years,
            "needs --embodied.kg-per-gpu or --embodied.host-kg",
        )),
        None => Ok(None),
        Some(kg) if kg > 0.0 && kg <= MAX_KG_PER_GPU => Ok(Some(Amortisation::new(kg, years))),
        Some(kg) => Err(invalid(
            "embodied.kg-per-gpu",
            kg,
            format!("must be above 0 and at most {MAX_KG_PER_GPU}"),
        )),
    }
}

/// `--embodied.host-kg`, over the same `--embodied.lifetime-years` (checked by [`embodied`]).
pub(super) fn embodied_host(f: &EmbodiedFlags) -> Result<Option<Amortisation>, ConfigError> {
    let years = f.lifetime_years.unwrap_or(DEFAULT_LIFETIME_YEARS);
    match f.host_kg {
        None => Ok(None),
        Some(kg) if kg > 0.0 && kg <= MAX_KG_PER_HOST => Ok(Some(Amortisation::new(kg, years))),
        Some(kg) => Err(invalid(
            "embodied.host-kg",
            kg,
            format!("must be above 0 and at most {MAX_KG_PER_HOST}"),
        )),
    }
}

pub(super) fn credential(
    flag: &'static str,
    file: Option<&Path>,
    var: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Secret, ConfigError> {
    secret::load(file, var, env).map_err(|e| match e {
        SecretError::Missing => invalid(
            flag,
            "(unset)",
            format!("no credential: set the environment variable {var} or --{flag}"),
        ),
        other => invalid(
            flag,
            file.map(|p| p.display().to_string())
                .unwrap_or_else(|| var.to_string()),
            other,
        ),
    })
}

pub(super) fn identifier(flag: &'static str, value: Option<&str>) -> Result<String, ConfigError> {
    match value {
        None => Err(invalid(flag, "(unset)", "required with this provider")),
        Some(v) if http::is_identifier(v) => Ok(v.to_string()),
        Some(v) => Err(invalid(flag, v, "use only letters, digits, - and _")),
    }
}

/// The outward part of a UK postcode (`RG10 1AA` → `RG10`), which is what the API takes.
pub(super) fn outward_postcode(text: &str) -> Result<String, ConfigError> {
    let outward = text
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_uppercase();
    if (2..=4).contains(&outward.len()) && outward.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(outward)
    } else {
        Err(invalid(
            "carbon.ukgrid.postcode",
            text,
            "expected an outward postcode such as RG10 or SW1A",
        ))
    }
}

pub(super) fn base_url(
    flag: &'static str,
    value: Option<&str>,
    default: &str,
) -> Result<String, ConfigError> {
    let url = value.unwrap_or(default).trim_end_matches('/');
    let ok = (url.starts_with("https://") || url.starts_with("http://"))
        && url.len() > "https://".len()
        && !url.contains(|c: char| c.is_whitespace() || c == '?' || c == '#');
    if ok {
        Ok(url.to_string())
    } else {
        Err(invalid(
            flag,
            value.unwrap_or(default),
            "expected an http:// or https:// base URL without query",
        ))
    }
}

pub(super) fn positive(flag: &'static str, text: &str) -> Result<Duration, ConfigError> {
    within(
        flag,
        text,
        (Duration::from_secs(1), Duration::from_secs(366 * 86_400)),
    )
}

pub(super) fn within(
    flag: &'static str,
    text: &str,
    (min, max): (Duration, Duration),
) -> Result<Duration, ConfigError> {
    let d = duration::parse(text).map_err(|e| invalid(flag, text, e))?;
    if d < min || d > max {
        return Err(invalid(
            flag,
            text,
            format!("must be between {min:?} and {max:?}"),
        ));
    }
    Ok(d)
}

/// `--path.procfs`, `--path.sysfs` and `--path.rootfs` that are not directories. Warned about,
/// not refused: each serves only some collectors (`--demo` reads none), and a wrong one shows
/// up only as missing data otherwise.
pub(super) fn host_paths(cli: &Cli) -> Vec<ConfigWarning> {
    [
        (
            "path.procfs",
            &cli.path_procfs,
            "attribution finds GPU processes there and the host estimate reads stat and meminfo",
        ),
        (
            "path.sysfs",
            &cli.path_sysfs,
            "the hwmon and rapl collectors and the host estimate's cgroup read it",
        ),
        (
            "path.rootfs",
            &cli.path_rootfs,
            "attribution reads etc/passwd under it",
        ),
    ]
    .into_iter()
    .filter(|(_, path, _)| !path.is_dir())
    .map(|(flag, path, used)| ConfigWarning {
        flag,
        value: path.display().to_string(),
        reason: format!("no such directory; {used}"),
    })
    .collect()
}
