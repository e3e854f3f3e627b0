//! Resolving a Docker-style `user[:group]` string against the container's
//! own `/etc/passwd` and `/etc/group`.
//!
//! Forms: `""` (root), `uid`, `uid:gid`, `name`, `name:group`, `uid:group`,
//! `name:gid`. The files are opened with `openat2(RESOLVE_IN_ROOT)`, so a
//! symlink such as `/etc/passwd -> /../../host/etc/passwd` resolves inside
//! the rootfs and never reaches the host's files.

use std::io::Read;
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use crate::SpecError;

/// Largest uid or gid accepted (runc's limit).
const MAX_ID: u32 = i32::MAX as u32;

/// Cap on how much of `/etc/passwd` or `/etc/group` is read.
const MAX_FILE_BYTES: u64 = 16 << 20;

/// The identity a container process runs as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedUser {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary groups, starting with the primary group (as containerd
    /// does, so `setgroups` never leaves a stale list).
    pub additional_gids: Vec<u32>,
}

/// One `/etc/passwd` line.
struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
}

/// One `/etc/group` line.
struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// Resolves `user` for a container whose root filesystem is at `rootfs`
/// (a host path). Names need `rootfs`; numeric ids do not, and missing
/// files are fine for them.
pub fn resolve(user: &str, rootfs: Option<&Path>) -> Result<ResolvedUser, SpecError> {
    let invalid = |reason: &str| SpecError::InvalidUser {
        user: user.to_string(),
        reason: reason.to_string(),
    };
    let (user_part, group_part) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (if user.is_empty() { "0" } else { user }, None),
    };
    if user_part.is_empty() {
        return Err(invalid("the user part is empty"));
    }
    if group_part == Some("") {
        return Err(invalid("the group part after ':' is empty"));
    }
    let uid_num = parse_id(user_part).map_err(|r| invalid(&r))?;
    let gid_num = group_part
        .map(parse_id)
        .transpose()
        .map_err(|r| invalid(&r))?
        .flatten();

    let passwd = read_rootfs_file(rootfs, "etc/passwd")?;
    let entry = passwd.as_deref().map(parse_passwd).and_then(|entries| {
        entries.into_iter().find(|e| match uid_num {
            Some(uid) => e.uid == uid,
            None => e.name == user_part,
        })
    });
    let (uid, mut gid, name) = match (uid_num, entry) {
        (_, Some(e)) => (e.uid, e.gid, Some(e.name)),
        (Some(uid), None) => (uid, 0, None),
        (None, None) if rootfs.is_none() => {
            return Err(SpecError::NoRootfs {
                name: user_part.to_string(),
            });
        }
        (None, None) => {
            return Err(SpecError::UnknownUser {
                name: user_part.to_string(),
            });
        }
    };

    let needs_groups = (group_part.is_some() && gid_num.is_none()) || name.is_some();
    let groups = if needs_groups {
        read_rootfs_file(rootfs, "etc/group")?
            .as_deref()
            .map(parse_group)
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let mut additional_gids = Vec::new();
    match (group_part, gid_num) {
        (Some(_), Some(g)) => gid = g,
        (Some(group), None) => {
            if rootfs.is_none() {
                return Err(SpecError::NoRootfs {
                    name: group.to_string(),
                });
            }
            gid = groups
                .iter()
                .find(|g| g.name == group)
                .map(|g| g.gid)
                .ok_or_else(|| SpecError::UnknownGroup {
                    name: group.to_string(),
                })?;
        }
        // No group given: the user's memberships are its supplementary groups.
        (None, _) => {
            if let Some(name) = &name {
                additional_gids.extend(
                    groups
                        .iter()
                        .filter(|g| g.members.iter().any(|m| m == name))
                        .map(|g| g.gid),
                );
            }
        }
    }
    additional_gids.insert(0, gid);
    let mut seen = Vec::with_capacity(additional_gids.len());
    additional_gids.retain(|g| {
        let new = !seen.contains(g);
        seen.push(*g);
        new
    });
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
    })
}

/// `Some(id)` for a decimal id in range, `None` for a name.
fn parse_id(s: &str) -> Result<Option<u32>, String> {
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    match s.parse::<u32>() {
        Ok(id) if id <= MAX_ID => Ok(Some(id)),
        _ => Err(format!("id {s} is out of range 0-{MAX_ID}")),
    }
}

/// Reads `rel` (relative to the rootfs) without leaving the rootfs;
/// `Ok(None)` when there is no rootfs or no such file.
fn read_rootfs_file(rootfs: Option<&Path>, rel: &str) -> Result<Option<String>, SpecError> {
    let Some(rootfs) = rootfs else {
        return Ok(None);
    };
    let io_err = |what, path: PathBuf| {
        move |e: Errno| SpecError::Io {
            what,
            path,
            source: e.into(),
        }
    };
    let root = rustix::fs::open(
        rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(io_err("opening rootfs", rootfs.to_path_buf()))?;
    let path = rootfs.join(rel);
    let fd = match rustix::fs::openat2(
        &root,
        rel,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    ) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(None),
        Err(e) => return Err(io_err("opening", path)(e)),
    };
    let stat = rustix::fs::fstat(&fd).map_err(io_err("inspecting", path.clone()))?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
        return Err(SpecError::Io {
            what: "reading",
            path,
            source: std::io::Error::other("not a regular file"),
        });
    }
    let mut text = String::new();
    std::fs::File::from(fd)
        .take(MAX_FILE_BYTES)
        .read_to_string(&mut text)
        .map_err(|source| SpecError::Io {
            what: "reading",
            path,
            source,
        })?;
    Ok(Some(text))
}

/// Parses `/etc/passwd`, skipping lines that are not well formed.
fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 4 || f[0].is_empty() || line.starts_with('#') {
                return None;
            }
            Some(PasswdEntry {
                name: f[0].to_string(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
            })
        })
        .collect()
}

/// Parses `/etc/group`, skipping lines that are not well formed.
fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 3 || f[0].is_empty() || line.starts_with('#') {
                return None;
            }
            Some(GroupEntry {
                name: f[0].to_string(),
                gid: f[2].parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .filter(|s| !s.is_empty())
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
                          # comment\n\
                          daemon:x:1:1::/:/bin/false\n\
                          app:x:1000:1000:App:/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\n\
                         wheel:x:10:root,app\n\
                         app:x:1000:\n\
                         video:x:44:app\n";

    /// A rootfs with the sample passwd and group files.
    fn rootfs() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("etc")).unwrap();
        fs::write(dir.path().join("etc/passwd"), PASSWD).unwrap();
        fs::write(dir.path().join("etc/group"), GROUP).unwrap();
        dir
    }

    fn user(uid: u32, gid: u32, extra: &[u32]) -> ResolvedUser {
        ResolvedUser {
            uid,
            gid,
            additional_gids: extra.to_vec(),
        }
    }

    #[test]
    fn empty_is_root_with_its_groups() {
        let r = rootfs();
        assert_eq!(resolve("", Some(r.path())).unwrap(), user(0, 0, &[0, 10]));
        assert_eq!(resolve("", None).unwrap(), user(0, 0, &[0]));
    }

    #[test]
    fn numeric_forms() {
        let r = rootfs();
        assert_eq!(
            resolve("1000", Some(r.path())).unwrap(),
            user(1000, 1000, &[1000, 10, 44])
        );
        assert_eq!(
            resolve("1000:44", Some(r.path())).unwrap(),
            user(1000, 44, &[44])
        );
        assert_eq!(
            resolve("4242", Some(r.path())).unwrap(),
            user(4242, 0, &[0])
        );
        assert_eq!(resolve("4242:7", None).unwrap(), user(4242, 7, &[7]));
    }

    #[test]
    fn name_forms() {
        let r = rootfs();
        let p = Some(r.path());
        assert_eq!(
            resolve("app", p).unwrap(),
            user(1000, 1000, &[1000, 10, 44])
        );
        assert_eq!(resolve("app:video", p).unwrap(), user(1000, 44, &[44]));
        assert_eq!(resolve("daemon:5", p).unwrap(), user(1, 5, &[5]));
        assert_eq!(resolve("1000:wheel", p).unwrap(), user(1000, 10, &[10]));
    }

    #[test]
    fn unknown_names_are_clear_errors() {
        let r = rootfs();
        let err = resolve("nobody", Some(r.path())).unwrap_err();
        assert!(matches!(err, SpecError::UnknownUser { ref name } if name == "nobody"));
        assert!(err.to_string().contains("/etc/passwd"));
        let err = resolve("app:staff", Some(r.path())).unwrap_err();
        assert!(matches!(err, SpecError::UnknownGroup { ref name } if name == "staff"));
        assert!(matches!(
            resolve("app", None),
            Err(SpecError::NoRootfs { .. })
        ));
    }

    #[test]
    fn malformed_strings() {
        for bad in [":1", "1:", "99999999999", "1:4294967295"] {
            assert!(
                matches!(resolve(bad, None), Err(SpecError::InvalidUser { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn missing_files_are_fine_for_numeric_ids() {
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(
            resolve("5:6", Some(empty.path())).unwrap(),
            user(5, 6, &[6])
        );
        assert_eq!(resolve("5", Some(empty.path())).unwrap(), user(5, 0, &[0]));
        assert!(matches!(
            resolve("app", Some(empty.path())),
            Err(SpecError::UnknownUser { .. })
        ));
    }

    #[test]
    fn passwd_symlink_cannot_escape_the_rootfs() {
        // <tmp>/host/etc/passwd is the "host" file; <tmp>/rootfs is the container.
        let tmp = tempfile::tempdir().unwrap();
        let host_etc = tmp.path().join("host/etc");
        fs::create_dir_all(&host_etc).unwrap();
        fs::write(host_etc.join("passwd"), "evil:x:0:0::/:/bin/sh\n").unwrap();
        let root = tmp.path().join("rootfs");
        fs::create_dir_all(root.join("etc")).unwrap();
        std::os::unix::fs::symlink("/../../host/etc/passwd", root.join("etc/passwd")).unwrap();
        std::os::unix::fs::symlink("../../host/etc/passwd", root.join("etc/group")).unwrap();

        // The link points nowhere inside the rootfs: the host's "evil" is unseen.
        assert!(matches!(
            resolve("evil", Some(&root)),
            Err(SpecError::UnknownUser { .. })
        ));
        // Where the link does resolve inside the rootfs, that file is read.
        fs::create_dir_all(root.join("host/etc")).unwrap();
        fs::write(root.join("host/etc/passwd"), "inside:x:7:8::/:/bin/sh\n").unwrap();
        assert_eq!(resolve("inside", Some(&root)).unwrap(), user(7, 8, &[8]));
        assert!(resolve("evil", Some(&root)).is_err());
    }

    #[test]
    fn passwd_that_is_not_a_file_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir_all(tmp.path().join("etc/passwd")).unwrap();
        assert!(matches!(
            resolve("app", Some(tmp.path())),
            Err(SpecError::Io { .. })
        ));
    }
}
