//! Finding containers the way docker users name them: full ID, name (label `berth.io/name`),
//! or a unique ID prefix; and making new IDs and names.

use anyhow::{Context as _, bail};
use berth_proto::labels::berth::NAME;
use containerd_client::services::v1::{
    Container, GetContainerRequest, ListContainersRequest, containers_client::ContainersClient,
};

use crate::client::Client;

/// The 12-character form of an ID that tables show.
pub fn short_id(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// A container's name: its `berth.io/name` label, else its ID (containers made by other
/// clients have no name label).
pub fn name_of(container: &Container) -> &str {
    container
        .labels
        .get(NAME)
        .map(String::as_str)
        .unwrap_or(&container.id)
}

/// A new random 64-hex-digit container ID, as docker makes them.
pub fn new_id() -> String {
    let mut bytes = [0u8; 32];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut bytes);
    }
    hex::encode(bytes)
}

/// Lists every container of the namespace, optionally through a containerd filter.
pub async fn list(client: &Client, filters: Vec<String>) -> anyhow::Result<Vec<Container>> {
    Ok(ContainersClient::new(client.channel.clone())
        .list(client.request(ListContainersRequest { filters }))
        .await
        .context("listing containers")?
        .into_inner()
        .containers)
}

/// Finds one container by full ID, name or unique ID prefix; "no such container" otherwise.
pub async fn find(client: &Client, reference: &str) -> anyhow::Result<Container> {
    if reference.is_empty() {
        bail!("a container name or ID is required");
    }
    let exact = ContainersClient::new(client.channel.clone())
        .get(client.request(GetContainerRequest {
            id: reference.to_string(),
        }))
        .await;
    match exact {
        Ok(r) => {
            if let Some(c) = r.into_inner().container {
                return Ok(c);
            }
        }
        Err(s) if s.code() == tonic::Code::NotFound || s.code() == tonic::Code::InvalidArgument => {
        }
        Err(s) => return Err(s).context("looking up container"),
    }
    let all = list(client, Vec::new()).await?;
    if let Some(c) = all
        .iter()
        .find(|c| c.labels.get(NAME).map(String::as_str) == Some(reference))
    {
        return Ok(c.clone());
    }
    let mut prefixed = all.into_iter().filter(|c| c.id.starts_with(reference));
    match (prefixed.next(), prefixed.next()) {
        (Some(c), None) => Ok(c),
        (Some(_), Some(_)) => bail!("multiple containers match {reference:?}: give more of the ID"),
        _ => bail!("no such container: {reference}"),
    }
}

/// Checks that `name` is a valid docker-style container name and not taken in the namespace.
pub async fn check_new_name(client: &Client, name: &str) -> anyhow::Result<()> {
    let valid = name.len() > 1 || name.chars().all(|c| c.is_ascii_alphanumeric());
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    if !valid
        || !first_ok
        || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        bail!("invalid container name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed");
    }
    // One filtered List, so that naming a container costs the same however many exist.
    let taken = list(client, vec![format!("labels.\"{NAME}\"==\"{name}\"")])
        .await?
        .into_iter()
        .next();
    if let Some(c) = taken {
        bail!(
            "the container name {name:?} is already in use by container {}: remove or rename it first",
            short_id(&c.id)
        );
    }
    Ok(())
}

/// A docker-like generated name: an adjective and a noun (`brave_turing`).
pub fn generated_name(id: &str) -> String {
    const ADJECTIVES: [&str; 16] = [
        "brave", "calm", "eager", "fond", "gentle", "happy", "jolly", "keen", "lucid", "merry",
        "nifty", "proud", "quiet", "sharp", "tender", "witty",
    ];
    const NOUNS: [&str; 16] = [
        "anchor", "beacon", "cargo", "dock", "ferry", "harbor", "hull", "keel", "mast", "pier",
        "quay", "rudder", "sail", "tide", "wharf", "yard",
    ];
    let byte =
        |i: usize| u8::from_str_radix(id.get(i..i + 2).unwrap_or("00"), 16).unwrap_or(0) as usize;
    format!(
        "{}_{}_{}",
        ADJECTIVES[byte(0) % 16],
        NOUNS[byte(2) % 16],
        id.get(4..8).unwrap_or("0000")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names() {
        let id = new_id();
        assert_eq!(id.len(), 64);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(id, new_id());
        assert_eq!(short_id(&id).len(), 12);
        let name = generated_name(&id);
        assert_eq!(name.split('_').count(), 3);
    }
}
