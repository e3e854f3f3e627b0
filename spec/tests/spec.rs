//! The public builder end to end: defaults, options, and JSON.

use std::collections::HashSet;
use std::fs;

use berth_spec::{
    BindMount, DEFAULT_CAPABILITIES, DEFAULT_NOFILE, DEFAULT_PATH, SPEC_TYPE_URL, SpecBuilder,
    SpecError, from_json, own_hard_limit, to_json,
};
use oci_spec::image::{ConfigBuilder, ImageConfiguration, ImageConfigurationBuilder};
use oci_spec::runtime::{Capability, LinuxNamespaceType, PosixRlimitType, Process, Spec};

fn image(user: &str) -> ImageConfiguration {
    let config = ConfigBuilder::default()
        .entrypoint(vec!["/docker-entrypoint.sh".to_string()])
        .cmd(vec!["nginx".to_string(), "-g".to_string()])
        .env(vec![
            "PATH=/opt/bin:/bin".to_string(),
            "MODE=prod".to_string(),
        ])
        .working_dir("/srv")
        .user(user)
        .build()
        .unwrap();
    ImageConfigurationBuilder::default()
        .config(config)
        .build()
        .unwrap()
}

fn process(spec: &Spec) -> &Process {
    spec.process().as_ref().unwrap()
}

fn bounding(spec: &Spec) -> HashSet<Capability> {
    process(spec)
        .capabilities()
        .as_ref()
        .unwrap()
        .bounding()
        .clone()
        .unwrap()
}

fn syscall_rules(spec: &Spec, name: &str) -> usize {
    spec.linux()
        .as_ref()
        .unwrap()
        .seccomp()
        .as_ref()
        .unwrap()
        .syscalls()
        .as_ref()
        .unwrap()
        .iter()
        .filter(|s| s.names().iter().any(|n| n == name))
        .count()
}

fn basic() -> SpecBuilder {
    SpecBuilder::new("default", "c1").args(["sh"])
}

#[test]
fn defaults_look_like_docker() {
    let spec = basic().build().unwrap();
    let p = process(&spec);
    assert_eq!(p.args().as_ref().unwrap(), &["sh"]);
    assert_eq!(p.cwd().to_str(), Some("/"));
    assert_eq!(p.terminal(), Some(false));
    assert_eq!((p.user().uid(), p.user().gid()), (0, 0));
    assert_eq!(p.no_new_privileges(), Some(false));
    assert_eq!(
        bounding(&spec),
        DEFAULT_CAPABILITIES.iter().copied().collect::<HashSet<_>>()
    );
    let env = p.env().as_ref().unwrap();
    assert!(env.contains(&format!("PATH={DEFAULT_PATH}")));
    assert!(env.contains(&"HOSTNAME=c1".to_string()));
    assert!(!env.iter().any(|e| e.starts_with("TERM=")));

    let root = spec.root().as_ref().unwrap();
    assert_eq!(root.path().to_str(), Some("rootfs"));
    assert_eq!(root.readonly(), Some(false));
    assert_eq!(spec.hostname().as_deref(), Some("c1"));

    let linux = spec.linux().as_ref().unwrap();
    assert_eq!(
        linux.cgroups_path().as_ref().unwrap().to_str(),
        Some("/default/c1")
    );
    assert_eq!(linux.namespaces().as_ref().unwrap().len(), 5);
    assert_eq!(linux.masked_paths().as_ref().unwrap().len(), 11);
    assert_eq!(linux.readonly_paths().as_ref().unwrap().len(), 5);
    assert!(linux.seccomp().is_some());
    let dests: Vec<_> = spec
        .mounts()
        .as_ref()
        .unwrap()
        .iter()
        .map(|m| m.destination().to_str().unwrap().to_string())
        .collect();
    for d in [
        "/proc",
        "/dev",
        "/dev/pts",
        "/dev/shm",
        "/dev/mqueue",
        "/sys",
        "/sys/fs/cgroup",
    ] {
        assert!(dests.contains(&d.to_string()), "{d}");
    }
}

#[test]
fn hostname_defaults_to_short_id() {
    let spec = SpecBuilder::new("moby", "0123456789abcdef0123")
        .args(["true"])
        .build()
        .unwrap();
    assert_eq!(spec.hostname().as_deref(), Some("0123456789ab"));
    let spec = basic().hostname("web").build().unwrap();
    assert_eq!(spec.hostname().as_deref(), Some("web"));
    assert!(basic().hostname("x".repeat(65)).build().is_err());
}

#[test]
fn image_config_and_docker_arg_rules() {
    let spec = SpecBuilder::new("moby", "c")
        .image_config(&image(""))
        .build()
        .unwrap();
    let p = process(&spec);
    assert_eq!(
        p.args().as_ref().unwrap(),
        &["/docker-entrypoint.sh", "nginx", "-g"]
    );
    assert_eq!(p.cwd().to_str(), Some("/srv"));

    let spec = SpecBuilder::new("moby", "c")
        .image_config(&image(""))
        .args(["bash"])
        .build()
        .unwrap();
    assert_eq!(
        process(&spec).args().as_ref().unwrap(),
        &["/docker-entrypoint.sh", "bash"]
    );

    let spec = SpecBuilder::new("moby", "c")
        .image_config(&image(""))
        .entrypoint(["/bin/sh"])
        .cwd("/tmp")
        .build()
        .unwrap();
    assert_eq!(process(&spec).args().as_ref().unwrap(), &["/bin/sh"]);
    assert_eq!(process(&spec).cwd().to_str(), Some("/tmp"));

    assert!(matches!(
        SpecBuilder::new("moby", "c").build(),
        Err(SpecError::NoCommand)
    ));
    assert!(matches!(
        basic().cwd("relative").build(),
        Err(SpecError::InvalidValue { option: "cwd", .. })
    ));
}

#[test]
fn env_overrides_image_env() {
    let spec = SpecBuilder::new("moby", "c")
        .image_config(&image(""))
        .env("MODE", "dev")
        .envs(["EXTRA=1"])
        .terminal(true)
        .build()
        .unwrap();
    let p = process(&spec);
    assert_eq!(p.terminal(), Some(true));
    let env = p.env().as_ref().unwrap();
    assert!(env.contains(&"PATH=/opt/bin:/bin".to_string()), "{env:?}");
    assert!(!env.contains(&format!("PATH={DEFAULT_PATH}")));
    assert!(env.contains(&"MODE=dev".to_string()));
    assert!(!env.contains(&"MODE=prod".to_string()));
    assert!(env.contains(&"EXTRA=1".to_string()));
    assert!(env.contains(&"TERM=xterm".to_string()));
    assert!(basic().envs(["=oops"]).build().is_err());
}

#[test]
fn user_from_image_and_override_against_rootfs() {
    let rootfs = tempfile::tempdir().unwrap();
    fs::create_dir(rootfs.path().join("etc")).unwrap();
    fs::write(
        rootfs.path().join("etc/passwd"),
        "root:x:0:0::/root:/bin/sh\nwww:x:33:33::/var/www:/bin/false\n",
    )
    .unwrap();
    fs::write(
        rootfs.path().join("etc/group"),
        "root:x:0:\nwww:x:33:\nlogs:x:4:www\n",
    )
    .unwrap();

    let spec = SpecBuilder::new("moby", "c")
        .image_config(&image("www"))
        .rootfs_dir(rootfs.path())
        .build()
        .unwrap();
    let user = process(&spec).user().clone();
    assert_eq!((user.uid(), user.gid()), (33, 33));
    assert_eq!(user.additional_gids().as_ref().unwrap(), &[33, 4]);
    // Non-root: a bounding set only.
    let caps = process(&spec).capabilities().clone().unwrap();
    assert!(caps.effective().is_none());

    let spec = SpecBuilder::new("moby", "c")
        .image_config(&image("www"))
        .rootfs_dir(rootfs.path())
        .user("0:logs")
        .build()
        .unwrap();
    let user = process(&spec).user().clone();
    assert_eq!((user.uid(), user.gid()), (0, 4));

    let err = basic()
        .rootfs_dir(rootfs.path())
        .user("ghost")
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("ghost"), "{err}");
}

#[test]
fn capabilities_add_drop_all_privileged() {
    let spec = basic()
        .cap_add("net_admin")
        .cap_drop("CAP_MKNOD")
        .build()
        .unwrap();
    let b = bounding(&spec);
    assert!(b.contains(&Capability::NetAdmin) && !b.contains(&Capability::Mknod));

    let spec = basic().cap_drop("ALL").cap_add("chown").build().unwrap();
    assert_eq!(bounding(&spec), HashSet::from([Capability::Chown]));

    let spec = basic().cap_add("all").build().unwrap();
    assert!(bounding(&spec).contains(&Capability::SysAdmin));
    assert_eq!(syscall_rules(&spec, "mount"), 1, "seccomp follows ALL");

    assert!(matches!(
        basic().cap_add("CAP_TELEPORT").build(),
        Err(SpecError::UnknownCapability(_))
    ));

    let spec = basic().privileged().build().unwrap();
    assert!(bounding(&spec).contains(&Capability::SysAdmin));
    let linux = spec.linux().as_ref().unwrap();
    assert!(linux.seccomp().is_none());
    assert!(linux.masked_paths().is_none() && linux.readonly_paths().is_none());
    let devices = linux
        .resources()
        .as_ref()
        .unwrap()
        .devices()
        .clone()
        .unwrap();
    assert_eq!(devices.len(), 1);
    assert!(devices[0].allow());
    let sys = spec
        .mounts()
        .as_ref()
        .unwrap()
        .iter()
        .find(|m| m.destination().to_str() == Some("/sys"))
        .unwrap()
        .clone();
    assert!(sys.options().as_ref().unwrap().contains(&"rw".to_string()));
}

#[test]
fn seccomp_follows_sys_admin() {
    let spec = basic().build().unwrap();
    assert_eq!(syscall_rules(&spec, "mount"), 0);
    assert_eq!(syscall_rules(&spec, "clone"), 1);
    let clone_has_args = |spec: &Spec| {
        spec.linux()
            .as_ref()
            .unwrap()
            .seccomp()
            .as_ref()
            .unwrap()
            .syscalls()
            .as_ref()
            .unwrap()
            .iter()
            .find(|s| s.names().iter().any(|n| n == "clone"))
            .unwrap()
            .args()
            .is_some()
    };
    assert!(clone_has_args(&spec));
    let admin = basic().cap_add("SYS_ADMIN").build().unwrap();
    assert_eq!(syscall_rules(&admin, "mount"), 1);
    assert_eq!(syscall_rules(&admin, "unshare"), 1);
    assert!(!clone_has_args(&admin));

    let unconfined = basic().seccomp_unconfined().build().unwrap();
    assert!(unconfined.linux().as_ref().unwrap().seccomp().is_none());
}

#[test]
fn rlimits_never_exceed_own_hard_limit() {
    let spec = basic()
        .ulimit(PosixRlimitType::RlimitNproc, 100, 200)
        .build()
        .unwrap();
    let rlimits = process(&spec).rlimits().clone().unwrap();
    let nofile = rlimits
        .iter()
        .find(|r| r.typ() == PosixRlimitType::RlimitNofile)
        .unwrap();
    let own = own_hard_limit(PosixRlimitType::RlimitNofile).unwrap_or(u64::MAX);
    assert_eq!(nofile.hard(), DEFAULT_NOFILE.min(own));
    assert!(nofile.soft() <= nofile.hard());
    let nproc = rlimits
        .iter()
        .find(|r| r.typ() == PosixRlimitType::RlimitNproc)
        .unwrap();
    assert_eq!(nproc.soft(), 100);
    assert!(
        basic()
            .ulimit(PosixRlimitType::RlimitNofile, 10, 5)
            .build()
            .is_err()
    );
}

#[test]
fn oom_score_adj_is_clamped_to_own() {
    let own: i32 = fs::read_to_string("/proc/self/oom_score_adj")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let spec = basic().oom_score_adj(-1000).build().unwrap();
    assert_eq!(process(&spec).oom_score_adj(), Some(own));
    let spec = basic().oom_score_adj(500).build().unwrap();
    assert_eq!(process(&spec).oom_score_adj(), Some(500.max(own)));
    assert!(basic().oom_score_adj(2000).build().is_err());
}

#[test]
fn resources_and_other_options() {
    let spec = basic()
        .memory(128 << 20)
        .cpu_shares(512)
        .cpus(1.0)
        .pids_limit(64)
        .host_network()
        .readonly_rootfs()
        .no_new_privileges()
        .annotation("io.berth.test", "yes")
        .mount(BindMount::new("/var/data", "/data").readonly(true))
        .build()
        .unwrap();
    let linux = spec.linux().as_ref().unwrap();
    let res = linux.resources().as_ref().unwrap();
    assert_eq!(res.memory().unwrap().limit(), Some(128 << 20));
    assert_eq!(res.cpu().as_ref().unwrap().quota(), Some(100_000));
    assert_eq!(res.cpu().as_ref().unwrap().shares(), Some(512));
    assert_eq!(res.pids().unwrap().limit(), 64);
    assert!(
        linux
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .all(|n| n.typ() != LinuxNamespaceType::Network)
    );
    assert_eq!(spec.root().as_ref().unwrap().readonly(), Some(true));
    assert_eq!(process(&spec).no_new_privileges(), Some(true));
    assert_eq!(spec.annotations().as_ref().unwrap()["io.berth.test"], "yes");
    assert!(
        spec.mounts()
            .as_ref()
            .unwrap()
            .iter()
            .any(|m| m.destination().to_str() == Some("/data"))
    );

    assert!(matches!(
        basic().memory(-5).build(),
        Err(SpecError::InvalidValue {
            option: "memory",
            ..
        })
    ));
    assert!(matches!(
        basic().mount(BindMount::new("/a", "/x/../etc")).build(),
        Err(SpecError::InvalidMount { .. })
    ));
    assert!(matches!(
        basic().mount(BindMount::new("/a", "etc")).build(),
        Err(SpecError::InvalidMount { .. })
    ));
    assert!(
        SpecBuilder::new("default", "../escape")
            .args(["sh"])
            .build()
            .is_err()
    );
}

#[test]
fn json_round_trip() {
    let spec = basic()
        .cap_add("SYS_PTRACE")
        .memory(64 << 20)
        .build()
        .unwrap();
    let bytes = to_json(&spec).unwrap();
    let back: Spec = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(back, spec);
    assert_eq!(from_json(&bytes).unwrap(), spec);
    let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(value["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
    assert_eq!(value["linux"]["cgroupsPath"], "/default/c1");
    assert_eq!(
        SPEC_TYPE_URL,
        "types.containerd.io/opencontainers/runtime-spec/1/Spec"
    );
}
