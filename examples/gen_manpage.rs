//! Writes the man page and shell completions of `gpu-carbon-exporter`, generated from its clap
//! definition (`cli::Cli`), so they list exactly the flags, defaults and environment variables
//! that `--help` does. `scripts/build-deb.sh` runs it before `cargo deb`, which packages what it
//! writes (`[package.metadata.deb]` in Cargo.toml):
//!
//! ```text
//! OUT_DIR/man/gpu-carbon-exporter.1            (and one page per subcommand, if any)
//! OUT_DIR/completions/gpu-carbon-exporter.bash
//! OUT_DIR/completions/_gpu-carbon-exporter     (zsh)
//! OUT_DIR/completions/gpu-carbon-exporter.fish
//! ```
//!
//! Usage: `cargo run --example gen_manpage -- OUT_DIR`. An example rather than a binary of the
//! crate: `clap_mangen` and `clap_complete` are then dev-dependencies, which neither
//! `cargo install` nor the exporter itself needs.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Command, CommandFactory};
use clap_complete::Shell;
use gpu_carbon_exporter::cli::Cli;

/// The name the binary is installed under.
const BIN: &str = "gpu-carbon-exporter";

/// Sections that the clap definition doesn't hold: where the packaged service keeps its options
/// and its ledger (`deploy/debian/`), and where to read more. Plain roff.
const PACKAGE_SECTIONS: &str = r#".SH FILES
.TP
\fI/etc/default/gpu\-carbon\-exporter\fR
Options of the packaged systemd service, as GPU_CARBON_EXPORTER_* variables (see the environment variable of each option above).
.TP
\fI/var/lib/gpu\-carbon\-exporter/state.json\fR
The ledger of the packaged service (\fB\-\-state.file\fR): energy and CO2e totals kept across restarts and upgrades.
.SH SEE ALSO
\fBsystemctl\fR(1), \fBjournalctl\fR(1), \fBprometheus\fR(1); the documentation in /usr/share/doc/gpu\-carbon\-exporter/ and at the project's repository (docs/*.md).
"#;

fn main() -> anyhow::Result<()> {
    let out: PathBuf = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .context("usage: gen_manpage OUT_DIR")?;
    let man_dir = out.join("man");
    let completion_dir = out.join("completions");
    for dir in [&man_dir, &completion_dir] {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    // The page shows the plain version: the build facts of `--version` belong to a binary, and
    // this program is not the binary that gets packaged.
    let mut cmd = Cli::command()
        .long_version(None::<&str>)
        .disable_help_subcommand(true);
    cmd.build();
    write_man_pages(&cmd, &man_dir, true)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let path = clap_complete::generate_to(shell, &mut cmd, BIN, &completion_dir)
            .with_context(|| format!("writing the {shell} completion"))?;
        println!("{}", path.display());
    }
    Ok(())
}

/// One page for `cmd` and one for each visible subcommand (`gpu-carbon-exporter-NAME.1`); the
/// top-level page also gets [`PACKAGE_SECTIONS`].
fn write_man_pages(cmd: &Command, dir: &Path, top: bool) -> anyhow::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_man_pages(sub, dir, false)?;
    }
    let man = clap_mangen::Man::new(cmd.clone());
    let path = dir.join(man.get_filename());
    let mut page = Vec::new();
    man.render(&mut page)?;
    if top {
        page.extend_from_slice(PACKAGE_SECTIONS.as_bytes());
    }
    let mut file =
        fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    file.write_all(&page)
        .with_context(|| format!("writing {}", path.display()))?;
    println!("{}", path.display());
    Ok(())
}
