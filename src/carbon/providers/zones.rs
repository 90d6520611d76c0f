//! Built-in table of grid carbon intensities, looked up by `--carbon.zone CODE`.
//!
//! Each zone gives the average carbon intensity of electricity in grams of
//! CO2-equivalent per kWh, keyed by ISO 3166-1 alpha-2 country code, plus a
//! `WORLD` row used when the user gives no intensity.
//!
//! Country values are Our World in Data's "Carbon intensity of electricity
//! generation" (lifecycle gCO2e/kWh, adapted from Ember and the Energy
//! Institute, CC BY 4.0) as shipped in codecarbon 3.3.2
//! `data/private_infra/global_energy_mix.json`; each row carries its own year
//! (mostly 2022 or 2023). `WORLD` is Ember's world average for 2023 (480,
//! Global Electricity Review 2024). The full attribution is in the
//! comment header of `zones.csv`.
//!
//! To update, regenerate `zones.csv` (same header and columns, rows sorted by
//! code), update its comment header and this paragraph, and run the tests.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::carbon::MAX_GRAMS_PER_KWH;

/// The exact header line that must precede the data rows.
const HEADER: &str = "code,name,grams_per_kwh,year,source";
/// Code of the mandatory world-average row.
const WORLD: &str = "WORLD";

/// One grid zone and its average carbon intensity.
#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    /// Upper-case zone code: ISO 3166-1 alpha-2, or `WORLD`.
    pub code: String,
    /// Human-readable name of the zone.
    pub name: String,
    /// Grams of CO2-equivalent emitted per kWh of grid electricity.
    pub grams_per_kwh: f64,
    /// Year the value refers to.
    pub year: u16,
    /// Short tag naming the data source, e.g. `owid-ember`.
    pub source: String,
}

/// Why a zone table could not be parsed. The first field of every variant is
/// the 1-based line number where the problem was found (see [`Self::line`]).
#[derive(Debug, thiserror::Error)]
pub enum ZoneTableError {
    /// The first non-comment, non-blank line (`.0`) is `.1`, not the header.
    #[error("zone table line {0}: expected header `{HEADER}`, found `{1}`")]
    MissingHeader(usize, String),
    /// Line `.0` has `.1` comma-separated columns instead of 5.
    #[error("zone table line {0}: expected 5 columns, found {1}")]
    ColumnCount(usize, usize),
    /// The code `.1` on line `.0` is empty or not ASCII letters and digits.
    #[error("zone table line {0}: invalid zone code `{1}` (expected ASCII letters/digits)")]
    BadCode(usize, String),
    /// Column `.1` (name or source) on line `.0` is empty.
    #[error("zone table line {0}: column `{1}` is empty")]
    EmptyField(usize, &'static str),
    /// The intensity `.1` on line `.0` is non-numeric, NaN, negative or above
    /// [`MAX_GRAMS_PER_KWH`].
    #[error("zone table line {0}: invalid grams_per_kwh `{1}`: {2}")]
    BadIntensity(usize, String, String),
    /// The year `.1` on line `.0` is not an integer within 1900..=2100.
    #[error("zone table line {0}: invalid year `{1}` (expected 1900..=2100)")]
    BadYear(usize, String),
    /// Code `.1` on line `.0` already appeared (any case) on line `.2`.
    #[error("zone table line {0}: duplicate zone code `{1}` (first on line {2})")]
    DuplicateCode(usize, String, usize),
    /// The text ended at line `.0` without a `WORLD` row.
    #[error("zone table line {0}: reached end of table without a `{WORLD}` row")]
    MissingWorld(usize),
}

impl ZoneTableError {
    /// The 1-based line number the error refers to.
    pub fn line(&self) -> usize {
        match self {
            Self::MissingHeader(line, ..)
            | Self::ColumnCount(line, ..)
            | Self::BadCode(line, ..)
            | Self::EmptyField(line, ..)
            | Self::BadIntensity(line, ..)
            | Self::BadYear(line, ..)
            | Self::DuplicateCode(line, ..)
            | Self::MissingWorld(line) => *line,
        }
    }
}

/// A table of zones sorted by code, always containing a `WORLD` row.
#[derive(Debug, Clone)]
pub struct ZoneTable {
    zones: Vec<Zone>,
    world: usize,
}

impl ZoneTable {
    /// Parses CSV text: `#` comment lines and blank lines are skipped, then the
    /// header `code,name,grams_per_kwh,year,source`, then one row per zone.
    pub fn parse(text: &str) -> Result<ZoneTable, ZoneTableError> {
        let mut header_seen = false;
        let mut first_lines: HashMap<String, usize> = HashMap::new();
        let mut zones = Vec::new();
        let mut last_line = 0;
        for (idx, raw) in text.lines().enumerate() {
            let line = idx + 1;
            last_line = line;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            if !header_seen {
                if trimmed != HEADER {
                    let found = trimmed.to_string();
                    return Err(ZoneTableError::MissingHeader(line, found));
                }
                header_seen = true;
                continue;
            }
            let zone = parse_row(line, trimmed)?;
            if let Some(&first_line) = first_lines.get(&zone.code) {
                return Err(ZoneTableError::DuplicateCode(line, zone.code, first_line));
            }
            first_lines.insert(zone.code.clone(), line);
            zones.push(zone);
        }
        if !header_seen {
            let found = String::from("end of text");
            return Err(ZoneTableError::MissingHeader(last_line, found));
        }
        zones.sort_by(|a, b| a.code.cmp(&b.code));
        let world = zones
            .binary_search_by(|z| z.code.as_str().cmp(WORLD))
            .map_err(|_| ZoneTableError::MissingWorld(last_line))?;
        Ok(ZoneTable { zones, world })
    }

    /// The built-in table compiled from `zones.csv`, parsed on first use.
    pub fn builtin() -> &'static ZoneTable {
        static BUILTIN: OnceLock<ZoneTable> = OnceLock::new();
        BUILTIN.get_or_init(|| {
            ZoneTable::parse(include_str!("zones.csv"))
                .expect("built-in zones.csv is valid (checked by unit tests)")
        })
    }

    /// Looks a zone up by code, ignoring ASCII case (`se`, `SE`, `world`).
    pub fn get(&self, code: &str) -> Option<&Zone> {
        let wanted = code.trim().to_ascii_uppercase();
        self.zones
            .binary_search_by(|z| z.code.as_str().cmp(wanted.as_str()))
            .ok()
            .map(|i| &self.zones[i])
    }

    /// The `WORLD` row: the world-average intensity.
    pub fn world(&self) -> &Zone {
        &self.zones[self.world]
    }

    /// Number of zones, including the `WORLD` row.
    pub fn len(&self) -> usize {
        self.zones.len()
    }

    /// Whether the table has no zones (never true for a parsed table).
    pub fn is_empty(&self) -> bool {
        self.zones.is_empty()
    }

    /// All zone codes in sorted order, including `WORLD`.
    pub fn codes(&self) -> impl Iterator<Item = &str> {
        self.zones.iter().map(|z| z.code.as_str())
    }
}

/// Parses one data row (already trimmed) found on `line`.
fn parse_row(line: usize, row: &str) -> Result<Zone, ZoneTableError> {
    let fields: Vec<&str> = row.split(',').map(str::trim).collect();
    let [code, name, grams, year, source] = fields[..] else {
        return Err(ZoneTableError::ColumnCount(line, fields.len()));
    };
    if code.is_empty() || !code.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(ZoneTableError::BadCode(line, code.to_string()));
    }
    for (column, value) in [("name", name), ("source", source)] {
        if value.is_empty() {
            return Err(ZoneTableError::EmptyField(line, column));
        }
    }
    let bad_intensity =
        |why: &str| ZoneTableError::BadIntensity(line, grams.to_string(), why.to_owned());
    let grams_per_kwh: f64 = grams.parse().map_err(|_| bad_intensity("not a number"))?;
    if !grams_per_kwh.is_finite() {
        return Err(bad_intensity("not a finite number"));
    }
    if grams_per_kwh < 0.0 {
        return Err(bad_intensity("negative"));
    }
    if grams_per_kwh > MAX_GRAMS_PER_KWH {
        return Err(bad_intensity(&format!(
            "above {MAX_GRAMS_PER_KWH} gCO2e/kWh"
        )));
    }
    let bad_year = || ZoneTableError::BadYear(line, year.to_string());
    let year: u16 = year.parse().map_err(|_| bad_year())?;
    if !(1900..=2100).contains(&year) {
        return Err(bad_year());
    }
    Ok(Zone {
        code: code.to_ascii_uppercase(),
        name: name.to_string(),
        grams_per_kwh,
        year,
        source: source.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grams(code: &str) -> f64 {
        let zone = ZoneTable::builtin().get(code);
        zone.map(|z| z.grams_per_kwh).expect("zone present")
    }

    #[test]
    fn builtin_table_is_complete_and_plausible() {
        let table = ZoneTable::builtin();
        assert!(table.len() >= 61 && !table.is_empty(), "{}", table.len());
        for code in "SG US CN IN DE FR GB SE NO PL AU JP BR CA ZA".split(' ') {
            let zone = table.get(code).expect(code);
            assert_eq!(zone.code, code);
            assert!(matches!(zone.year, 2022 | 2023), "{zone:?}");
        }
        assert_eq!(table.world().code, "WORLD");
        assert_eq!(table.world().grams_per_kwh, 480.0);
        let codes: Vec<&str> = table.codes().collect();
        assert!(codes.windows(2).all(|w| w[0] < w[1]));
        assert!(codes.iter().all(|c| c.len() == 2 || *c == "WORLD"));
        assert!(table.zones.iter().all(|z| z.grams_per_kwh > 1.0));
        assert!(table.zones.iter().all(|z| z.grams_per_kwh < 1500.0));
        for low in ["FR", "SE", "NO", "BR"] {
            assert!(grams(low) < 100.0, "{low}");
        }
        for high in ["PL", "IN", "ZA", "AU", "CN"] {
            assert!(grams(high) > 500.0, "{high}");
        }
        assert!(grams("CN") > grams("US") && grams("DE") > grams("GB"));
    }

    #[test]
    fn lookup_is_case_insensitive() {
        let table = ZoneTable::builtin();
        assert_eq!(table.get("se"), table.get("SE"));
        assert_eq!(table.get("Se").map(|z| z.name.as_str()), Some("Sweden"));
        assert_eq!(table.get("world"), Some(table.world()));
        assert!(table.get("XX").is_none() && table.get("").is_none());
        let text = format!("{HEADER}\n\n se , Sweden ,40.5,2023,x\nWORLD,W,475,2018,y");
        let table = ZoneTable::parse(&text).expect("valid table");
        assert_eq!(table.codes().collect::<Vec<_>>(), ["SE", "WORLD"]);
        assert_eq!(table.get("se").map(|z| z.name.as_str()), Some("Sweden"));
    }

    #[test]
    fn errors_name_the_line() {
        let t = |rows: &str| format!("# c\n{HEADER}\n{rows}\n");
        let w = "WORLD,W,475,2018,y";
        let cases = [
            (t(&format!("{w}\nSE,S,1,2023")), 4, "5 columns, found 4"),
            (t(&format!("{w}\nSE,S,abc,2023,x")), 4, "not a number"),
            (t(&format!("{w}\n\nSE,S,-1,2023,x")), 5, "negative"),
            (t("SE,S,NaN,2023,x"), 3, "not a finite number"),
            (t("SE,S,2000.5,2023,x"), 3, "above 2000"),
            (t("SE,S,1,20x3,x"), 3, "invalid year `20x3`"),
            (t("SE,S,1,1800,x"), 3, "invalid year `1800`"),
            (t("S-E,S,1,2023,x"), 3, "invalid zone code `S-E`"),
            (t("SE,,1,2023,x"), 3, "column `name` is empty"),
            (
                t(&format!("SE,S,1,2023,x\n{w}\nse,S,2,2023,x")),
                5,
                "line 3)",
            ),
            (t("SE,S,1,2023,x\nFR,F,2,2023,x"), 4, "`WORLD` row"),
            ("# c\n\nSE,S,1,2023,x\n".into(), 3, "expected header"),
            ("# only comments\n".into(), 1, "found `end of text`"),
        ];
        for (text, line, what) in cases {
            let err = ZoneTable::parse(&text).expect_err(&text);
            assert_eq!(err.line(), line, "{err}");
            let msg = err.to_string();
            assert!(msg.contains(&format!("line {line}:")), "{msg}");
            assert!(msg.contains(what), "{msg}");
        }
    }
}
