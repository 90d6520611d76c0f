//! Users as HPC sites define them: on the host (`--path.rootfs=/`) names come from NSS
//! (`getpwuid_r`), so LDAP, SSSD or NIS users are named. NSS is made to answer from a file of
//! the test's own with Samba's `nss_wrapper` (`LD_PRELOAD`, Debian's `libnss-wrapper`), which is
//! not the host's `/etc/passwd`: a name found for a UID only that file has came through NSS.

use std::path::Path;

use super::{scrape_after, start_with_env, Host, GPU_A};
use crate::support::{now_unix, temp_file};

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
