//! Users as HPC sites define them: on the host (`--path.rootfs=/`) names come from NSS
//! (`getpwuid_r`), so LDAP, SSSD or NIS users are named. NSS is made to answer from a file of
//! the test's own with Samba's `nss_wrapper` (`LD_PRELOAD`, Debian's `libnss-wrapper`), which is
//! not the host's `/etc/passwd`: a name found for a UID only that file has came through NSS.
//! And a `getpwuid_r` that hangs (compiled here, `LD_PRELOAD`) must not stall sampling.

use std::path::Path;

use super::{scrape_after, start_with_env, Host, GPU_A};
use crate::support::{now_unix, preload_shim, temp_file};

const WRAPPER: &str = "/usr/lib/x86_64-linux-gnu/libnss_wrapper.so";

fn nss_wrapper_available() -> bool {
    let ok = Path::new(WRAPPER).exists();
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "{WRAPPER} is required under CI (apt-get install libnss-wrapper)"
        );
        eprintln!("SKIP: {WRAPPER} missing (apt-get install libnss-wrapper)");
    }
    ok
}

#[test]
fn on_the_host_users_are_named_through_nss() {
    if !nss_wrapper_available() {
        return;
    }
    let host = Host::new("nss");
    host.process(
        601,
        70001,
        "0::/user.slice/user-70001.slice/session-1.scope\n",
    )
    .process(
        602,
        70002,
        "0::/user.slice/user-70002.slice/session-2.scope\n",
    );
    let passwd = temp_file(
        "nss.passwd",
        "root:x:0:0:root:/root:/bin/sh\nldap-alice:x:70001:100:From the directory:/home/a:/bin/sh\n",
    );
    let group = temp_file("nss.group", "root:x:0:\nusers:x:100:\n");
    let epoch = now_unix();
    let scenario = format!(
        "epoch = {epoch}\n[gpu]\nuuid = {GPU_A}\npower = const:300\n\
         process = pid=601 sm=const:30\nprocess = pid=602 sm=const:10\n"
    );
    let env = [
        ("LD_PRELOAD", WRAPPER),
        ("NSS_WRAPPER_PASSWD", passwd.to_str().expect("utf-8")),
        ("NSS_WRAPPER_GROUP", group.to_str().expect("utf-8")),
    ];
    let exporter = start_with_env(
        &host,
        &scenario,
        &["--path.rootfs=/", "--attribution.labels=user"],
        &env,
    );
    let s = scrape_after(&exporter, epoch, 1.5);
    let users: Vec<String> = s
        .find("gpu_workload_energy_kwh_total", &[])
        .iter()
        .map(|x| x.label("user").unwrap_or("").to_string())
        .collect();
    assert_eq!(users, ["70002", "ldap-alice"], "{}", s.text);
    let alice = s.value("gpu_workload_energy_kwh_total", &[("user", "ldap-alice")]);
    let other = s.value("gpu_workload_energy_kwh_total", &[("user", "70002")]);
    super::assert_rel("SM-share split 30:10", alice, 3.0 * other, 1e-9);
}

/// A `getpwuid_r` that hangs for 3 s on UIDs 80000–80099, as a hung directory server would,
/// and answers as the C library does for the others.
const HANGING_NSS: &str = r#"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pwd.h>
#include <unistd.h>
typedef int (*lookup)(uid_t, struct passwd *, char *, size_t, struct passwd **);
int getpwuid_r(uid_t uid, struct passwd *pwd, char *buf, size_t len, struct passwd **out) {
    if (uid >= 80000 && uid < 80100) sleep(3);
    lookup real = (lookup)dlsym(RTLD_NEXT, "getpwuid_r");
    return real(uid, pwd, buf, len, out);
}
"#;

/// A directory server that hangs holds up no sample by more than the lookup wait (250 ms):
/// sampling goes on at its interval, the user is labelled by UID, and the energy still adds up.
#[test]
fn a_hanging_directory_server_does_not_stall_sampling() {
    let shim = preload_shim("hang", HANGING_NSS);
    let host = Host::new("nss-hang");
    host.process(
        611,
        80001,
        "0::/user.slice/user-80001.slice/session-1.scope\n",
    );
    let epoch = now_unix();
    let scenario = format!(
        "epoch = {epoch}\n[gpu]\nuuid = {GPU_A}\npower = const:300\nprocess = pid=611 sm=const:30\n"
    );
    let env = [("LD_PRELOAD", shim.to_str().expect("utf-8"))];
    let exporter = start_with_env(
        &host,
        &scenario,
        &["--path.rootfs=/", "--attribution.labels=user"],
        &env,
    );
    // While the lookup hangs (3 s), samples keep coming every 100 ms and none takes much
    // longer than the 250 ms the sampler waits for a name.
    let (mut stamps, mut longest) = (Vec::new(), 0.0_f64);
    while stamps.len() < 2 || stamps[stamps.len() - 1] - epoch < 2.5 {
        let s = exporter.scrape();
        stamps.push(s.value("gpu_carbon_exporter_last_sample_timestamp_seconds", &[]));
        longest = longest.max(s.value("gpu_carbon_exporter_sample_duration_seconds", &[]));
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let gaps = stamps.windows(2).map(|w| w[1] - w[0]);
    let widest = gaps.fold(0.0_f64, f64::max);
    assert!(widest < 1.0, "no sample for {widest} s while NSS hung");
    assert!(longest < 1.0, "a sample took {longest} s while NSS hung");
    let s = scrape_after(&exporter, epoch, 3.5);
    let device = s.value("gpu_energy_kwh_total", &[("uuid", GPU_A)]);
    let workload = s.value("gpu_workload_energy_kwh_total", &[("user", "80001")]);
    super::assert_rel(
        "the process's energy, under its UID",
        workload,
        device,
        1e-9,
    );
}
