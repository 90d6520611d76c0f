//! Workload attribution input (`attribution`): `/proc/PID/cgroup`, `/proc/PID/status`,
//! `/etc/passwd` and the kubelet pod-resources gRPC answer. The first byte picks the parser;
//! the rest is the input. Whatever a process, a container runtime or the kubelet writes, the
//! identities found keep their documented shapes (so labels stay bounded), never a panic.
#![no_main]

use gpu_carbon_exporter::attribution::kubernetes::podresources::ListPodResourcesResponse;
use gpu_carbon_exporter::attribution::{cgroup, identity, users};
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let Some((&which, input)) = data.split_first() else {
        return;
    };
    if which % 4 == 3 {
        // tonic strips the gRPC framing; the message is what reaches our code.
        let _ = ListPodResourcesResponse::decode(input);
        return;
    }
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    match which % 4 {
        0 => {
            let info = cgroup::parse(text);
            if let Some(id) = &info.container_id {
                assert!(
                    id.len() == 64 && id.chars().all(|c| c.is_ascii_hexdigit()),
                    "{id}"
                );
            }
            if let Some(uid) = &info.pod_uid {
                assert_eq!(uid.len(), 36, "{uid}");
                let qos = info.qos.as_deref().unwrap_or("none");
                assert!(
                    matches!(qos, "guaranteed" | "burstable" | "besteffort"),
                    "{qos}"
                );
            }
            if let Some(job) = &info.slurm_job {
                assert!(
                    !job.is_empty() && job.chars().all(|c| c.is_ascii_digit()),
                    "{job}"
                );
            }
        }
        1 => {
            for name in users::parse_passwd(text).values() {
                assert!(!name.is_empty() && !name.contains(':') && !name.contains('\n'));
            }
        }
        _ => {
            let _ = identity::status_uid(text);
        }
    }
});
