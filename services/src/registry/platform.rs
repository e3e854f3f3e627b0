//! Platforms (`os/arch[/variant]`) and how an image index entry is chosen for one.
//!
//! Matching follows containerd's rules. Both sides are normalised first: `x86_64`/`x86-64` is
//! `amd64`, `aarch64` is `arm64`, `i386` is `386`, `armhf` is `arm/v7`, `armel` is `arm/v6`;
//! `arm` without a variant means `v7`, and `arm64/v8` and `amd64/v1` equal their variant-less
//! forms. A platform then also accepts what it can run, best first: `amd64/v3` accepts
//! `amd64/v3`, `v2`, `amd64` and then `386`; `arm/v7` accepts `v7`, `v6`, `v5`; `arm64`
//! accepts `arm64` and then `arm/v8` down to `arm/v5`. [`select`] picks the best-ranked entry
//! of an index, keeping index order among equals, and falls back to an entry without a
//! platform only when nothing matched.

use std::fmt;

use berth_proto::errdefs::Error;
use serde::{Deserialize, Serialize};

use super::manifest::{Descriptor, Index};

/// The platform an image (or an index entry) is built for, as in the OCI image spec.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Platform {
    /// CPU architecture in Go's spelling (`amd64`, `arm64`, `arm`, `386`, …).
    pub architecture: String,
    /// Operating system in Go's spelling (`linux`, `windows`, …).
    pub os: String,
    /// OS version (Windows images use it).
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    /// Required OS features.
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
    /// CPU variant (`v7`, `v8`, …); empty when not given.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
}

impl Platform {
    /// A platform from its parts, normalised.
    pub fn new(os: &str, architecture: &str, variant: &str) -> Platform {
        Platform {
            architecture: architecture.to_string(),
            os: os.to_string(),
            os_version: None,
            os_features: None,
            variant: variant.to_string(),
        }
        .normalize()
    }

    /// The platform this process runs on (from `std::env::consts`), normalised.
    pub fn host() -> Platform {
        Platform::new(std::env::consts::OS, std::env::consts::ARCH, "")
    }

    /// Parses `os[/arch[/variant]]` or a bare architecture (`arm64` means the host OS on
    /// arm64), normalised; errors are InvalidArgument.
    pub fn parse(s: &str) -> Result<Platform, Error> {
        let bad = || {
            Error::invalid(format!(
                "invalid platform {s:?}: expected os/arch[/variant]"
            ))
        };
        let parts: Vec<&str> = s.split('/').collect();
        let valid = |p: &str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        };
        if parts.len() > 3 || !parts.iter().all(|p| valid(p)) {
            return Err(bad());
        }
        let host = Platform::host();
        match parts.as_slice() {
            [one] if is_known_os(&one.to_ascii_lowercase()) => {
                // `linux` alone means the host architecture on that OS.
                Ok(Platform::new(one, &host.architecture, &host.variant))
            }
            [arch] => Ok(Platform::new(&host.os, arch, "")),
            [os, arch] => Ok(Platform::new(os, arch, "")),
            [os, arch, variant] => Ok(Platform::new(os, arch, variant)),
            _ => Err(bad()),
        }
    }

    /// containerd's normalisation: lower case, Go architecture names, default variants.
    pub fn normalize(mut self) -> Platform {
        self.os = self.os.to_ascii_lowercase();
        if self.os == "macos" {
            self.os = "darwin".into();
        }
        let arch = self.architecture.to_ascii_lowercase();
        let variant = self.variant.to_ascii_lowercase();
        let (arch, variant) = match arch.as_str() {
            "i386" | "386" => ("386".to_string(), String::new()),
            "x86_64" | "x86-64" | "amd64" => {
                let v = if variant == "v1" {
                    String::new()
                } else {
                    variant
                };
                ("amd64".to_string(), v)
            }
            "aarch64" | "arm64" => {
                let v = match variant.as_str() {
                    "8" | "v8" | "v8.0" => String::new(),
                    _ => variant,
                };
                ("arm64".to_string(), v)
            }
            "armhf" => ("arm".to_string(), "v7".to_string()),
            "armel" => ("arm".to_string(), "v6".to_string()),
            "arm" => {
                let v = match variant.as_str() {
                    "" | "7" => "v7".to_string(),
                    "5" | "6" | "8" => format!("v{variant}"),
                    _ => variant,
                };
                ("arm".to_string(), v)
            }
            _ => (arch, variant),
        };
        self.architecture = arch;
        self.variant = variant;
        self
    }

    /// Whether `other` is exactly this platform once both are normalised (OS, architecture
    /// and variant; OS version and features are not compared).
    pub fn matches(&self, other: &Platform) -> bool {
        let a = self.clone().normalize();
        let b = other.clone().normalize();
        a.os == b.os && a.architecture == b.architecture && a.variant == b.variant
    }

    /// The platforms this one can run, best first (itself first).
    pub fn compatible(&self) -> Vec<Platform> {
        let me = self.clone().normalize();
        let with = |arch: &str, variant: String| Platform {
            architecture: arch.to_string(),
            variant,
            ..me.clone()
        };
        let version = |v: &str| v.strip_prefix('v').and_then(|n| n.parse::<u32>().ok());
        let mut out = vec![me.clone()];
        match me.architecture.as_str() {
            "amd64" => {
                if let Some(n) = version(&me.variant) {
                    for k in (2..n).rev() {
                        out.push(with("amd64", format!("v{k}")));
                    }
                    if n > 1 {
                        out.push(with("amd64", String::new()));
                    }
                }
                out.push(with("386", String::new()));
            }
            "arm" => {
                if let Some(n) = version(&me.variant) {
                    for k in (5..n).rev() {
                        out.push(with("arm", format!("v{k}")));
                    }
                }
            }
            "arm64" => {
                let n = if me.variant.is_empty() {
                    Some(8)
                } else {
                    version(&me.variant)
                };
                if let Some(n) = n {
                    for k in (5..=n.min(8)).rev() {
                        out.push(with("arm", format!("v{k}")));
                    }
                }
            }
            _ => {}
        }
        out
    }

    /// Where `candidate` ranks among the platforms this one can run (0 is best), or `None`
    /// if it cannot run it.
    pub fn rank(&self, candidate: &Platform) -> Option<usize> {
        self.compatible().iter().position(|p| p.matches(candidate))
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Platform {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Platform::parse(s)
    }
}

fn is_known_os(s: &str) -> bool {
    matches!(
        s,
        "linux" | "windows" | "darwin" | "freebsd" | "netbsd" | "openbsd" | "solaris" | "illumos"
    )
}

/// The entry of `index` that best suits `platform`: the best-ranked match (index order among
/// equals), else the first entry without a platform, else `None`.
pub fn select(index: &Index, platform: &Platform) -> Option<Descriptor> {
    let mut best: Option<(usize, &Descriptor)> = None;
    for desc in &index.manifests {
        if let Some(p) = &desc.platform
            && let Some(rank) = platform.rank(p)
            && best.is_none_or(|(r, _)| rank < r)
        {
            best = Some((rank, desc));
        }
    }
    best.map(|(_, d)| d)
        .or_else(|| index.manifests.iter().find(|d| d.platform.is_none()))
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::manifest::{Descriptor, Index, media_types};
    use berth_proto::digest::Digest;

    fn p(s: &str) -> Platform {
        Platform::parse(s).unwrap()
    }

    fn entry(n: u8, platform: Option<&str>) -> Descriptor {
        Descriptor {
            media_type: media_types::OCI_MANIFEST.into(),
            digest: Digest::sha256_of(&[n]),
            size: n as i64,
            platform: platform.map(|s| {
                let parts: Vec<&str> = s.split('/').collect();
                Platform {
                    os: parts[0].into(),
                    architecture: parts[1].into(),
                    variant: parts.get(2).unwrap_or(&"").to_string(),
                    ..Platform::default()
                }
            }),
            ..Descriptor::default()
        }
    }

    fn index(entries: Vec<Descriptor>) -> Index {
        Index {
            schema_version: 2,
            media_type: Some(media_types::OCI_INDEX.into()),
            manifests: entries,
            ..Index::default()
        }
    }

    #[test]
    fn parses_and_normalises() {
        assert_eq!(p("linux/amd64").to_string(), "linux/amd64");
        assert_eq!(p("linux/x86_64").to_string(), "linux/amd64");
        assert_eq!(p("Linux/AArch64").to_string(), "linux/arm64");
        assert_eq!(p("linux/arm64/v8").to_string(), "linux/arm64");
        assert_eq!(p("linux/arm").to_string(), "linux/arm/v7");
        assert_eq!(p("linux/armhf").to_string(), "linux/arm/v7");
        assert_eq!(p("linux/armel").to_string(), "linux/arm/v6");
        assert_eq!(p("linux/arm/6").to_string(), "linux/arm/v6");
        assert_eq!(p("linux/i386").to_string(), "linux/386");
        assert_eq!(p("linux/amd64/v1").to_string(), "linux/amd64");
        assert_eq!(p("windows/amd64").os, "windows");
        assert_eq!(p("arm64").os, std::env::consts::OS);
        assert_eq!(p("linux").architecture, Platform::host().architecture);
        for bad in ["", "/", "linux/", "a/b/c/d", "linux/am d64", "linux//v7"] {
            assert!(Platform::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn host_platform_is_normalised() {
        let host = Platform::host();
        assert_eq!(host.os, std::env::consts::OS);
        if std::env::consts::ARCH == "x86_64" {
            assert_eq!(host.to_string(), "linux/amd64");
        }
        assert_ne!(host.architecture, "x86_64");
        assert_ne!(host.architecture, "aarch64");
    }

    #[test]
    fn matching_ignores_equivalent_spellings() {
        assert!(p("linux/arm64").matches(&Platform::new("linux", "aarch64", "v8")));
        assert!(p("linux/arm").matches(&Platform::new("linux", "arm", "")));
        assert!(!p("linux/arm/v6").matches(&Platform::new("linux", "arm", "")));
        assert!(p("linux/amd64").matches(&Platform::new("Linux", "x86_64", "")));
        assert!(!p("linux/amd64").matches(&p("windows/amd64")));
    }

    #[test]
    fn compatibility_order_follows_containerd() {
        let names =
            |s: &str| -> Vec<String> { p(s).compatible().iter().map(|p| p.to_string()).collect() };
        assert_eq!(names("linux/amd64"), ["linux/amd64", "linux/386"]);
        assert_eq!(
            names("linux/amd64/v3"),
            [
                "linux/amd64/v3",
                "linux/amd64/v2",
                "linux/amd64",
                "linux/386"
            ]
        );
        assert_eq!(
            names("linux/arm/v7"),
            ["linux/arm/v7", "linux/arm/v6", "linux/arm/v5"]
        );
        assert_eq!(
            names("linux/arm64"),
            [
                "linux/arm64",
                "linux/arm/v8",
                "linux/arm/v7",
                "linux/arm/v6",
                "linux/arm/v5"
            ]
        );
    }

    #[test]
    fn selects_the_best_entry() {
        let idx = index(vec![
            entry(1, Some("linux/386")),
            entry(2, Some("linux/arm64/v8")),
            entry(3, Some("linux/x86_64")),
            entry(4, Some("linux/amd64")),
            entry(5, Some("linux/arm/v6")),
            entry(6, Some("linux/arm")),
            entry(7, Some("unknown/unknown")),
        ]);
        let size = |s: &str| select(&idx, &p(s)).map(|d| d.size);
        assert_eq!(
            size("linux/amd64"),
            Some(3),
            "first exact match in index order"
        );
        assert_eq!(size("linux/arm64"), Some(2));
        assert_eq!(size("linux/aarch64/v8"), Some(2));
        assert_eq!(size("linux/arm/v7"), Some(6));
        assert_eq!(size("linux/arm/v6"), Some(5));
        assert_eq!(size("linux/386"), Some(1));
        assert_eq!(size("linux/s390x"), None);
        assert_eq!(size("windows/amd64"), None);

        let only_386 = index(vec![entry(1, Some("linux/386"))]);
        assert_eq!(
            select(&only_386, &p("linux/amd64")).map(|d| d.size),
            Some(1)
        );
        let arm_only = index(vec![entry(1, Some("linux/arm/v7"))]);
        assert_eq!(
            select(&arm_only, &p("linux/arm64")).map(|d| d.size),
            Some(1)
        );
        assert!(select(&arm_only, &p("linux/arm/v6")).is_none());
    }

    #[test]
    fn entries_without_platform_are_the_last_resort() {
        let idx = index(vec![entry(1, None), entry(2, Some("linux/amd64"))]);
        assert_eq!(select(&idx, &p("linux/amd64")).map(|d| d.size), Some(2));
        assert_eq!(select(&idx, &p("linux/riscv64")).map(|d| d.size), Some(1));
        assert!(select(&index(vec![]), &p("linux/amd64")).is_none());
    }
}
