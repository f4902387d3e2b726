//! What a run takes from the state of earlier runs and gives back to the next one: where each
//! location resumes (after the anchors of its chains, which join its chains as verified
//! predecessors), and what it proved this time (each valid digest and log, with what the
//! listing said of it, and whether the location verified completely).

use super::*;

/// Where the locations that earlier runs verified resume.
#[derive(Clone, Debug, Default)]
pub struct Resume {
    pub locations: HashMap<Location, ResumeAt>,
}

/// One location's resumption: digests ending at or after `start`, and logs named at or after
/// it, are read; the chains' anchors (digests verified before, from the state's own record)
/// join the chains as predecessors, so that the first new digest's link to them is checked by
/// the same rules as any other link, and a chain with nothing after its anchor shows its gap.
#[derive(Clone, Debug)]
pub struct ResumeAt {
    pub start: Timestamp,
    pub anchors: Vec<DigestCheck>,
}

/// What a run proved, location by location, for the state it leaves.
#[derive(Default)]
pub struct Proof {
    locations: std::sync::Mutex<BTreeMap<Location, LocationProof>>,
}

/// One location's proof.
#[derive(Clone, Debug, Default)]
pub struct LocationProof {
    /// Its own valid digests in range, their lists of logs dropped.
    pub digests: Vec<DigestCheck>,
    /// Every object that verified, with the SHA-256 it verified with (of the inflated bytes)
    /// and what its listing said of it.
    pub objects: BTreeMap<String, Proven>,
    /// Every object the run decided, whatever it decided.
    pub judged: BTreeSet<String>,
    /// Settled with no error finding and no object left unverified.
    pub complete: bool,
}

/// One object that verified.
#[derive(Clone, Debug)]
pub struct Proven {
    pub object: &'static str,
    pub sha256: String,
    pub listed: Option<ObjectInfo>,
}

impl Proof {
    fn with<T>(&self, location: &Location, f: impl FnOnce(&mut LocationProof) -> T) -> T {
        let mut all = self.locations.lock().unwrap_or_else(|e| e.into_inner());
        f(all.entry(location.clone()).or_default())
    }

    pub(super) fn judged(&self, location: &Location, key: &str) {
        self.with(location, |p| {
            p.judged.insert(key.to_string());
        });
    }

    pub(super) fn object(
        &self,
        location: &Location,
        key: &str,
        object: &'static str,
        sha256: &str,
        listed: Option<ObjectInfo>,
    ) {
        self.with(location, |p| {
            p.judged.insert(key.to_string());
            p.objects.insert(
                key.to_string(),
                Proven {
                    object,
                    sha256: sha256.to_string(),
                    listed,
                },
            );
        });
    }

    pub(super) fn settled(&self, location: &Location, digests: Vec<DigestCheck>, complete: bool) {
        self.with(location, |p| {
            p.digests = digests;
            p.complete = complete;
        });
    }

    /// What was proved, by location.
    pub fn take(&self) -> BTreeMap<Location, LocationProof> {
        std::mem::take(&mut *self.locations.lock().unwrap_or_else(|e| e.into_inner()))
    }
}
