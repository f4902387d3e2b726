//! Where a state is kept, and how it is held for a run: a file (locked beside it, replaced
//! whole) or an S3 object (written only if it is still the one read).

use super::*;

/// Where a state is kept: a file, or an object in S3 (`s3://bucket/key`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Place {
    File(PathBuf),
    S3 { bucket: String, key: String },
}

impl Place {
    pub fn parse(text: &str) -> Result<Place, String> {
        match text.strip_prefix("s3://") {
            Some(rest) => match rest.split_once('/') {
                Some((bucket, key))
                    if !bucket.is_empty() && !key.is_empty() && !key.ends_with('/') =>
                {
                    Ok(Place::S3 {
                        bucket: bucket.into(),
                        key: key.into(),
                    })
                }
                _ => Err(format!(
                    "--state {text}: an S3 state is s3://bucket/key, naming an object"
                )),
            },
            None => Ok(Place::File(PathBuf::from(text))),
        }
    }
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Place::File(p) => write!(f, "{}", p.display()),
            Place::S3 { bucket, key } => write!(f, "s3://{bucket}/{key}"),
        }
    }
}

/// A state file held for one run: locked (a `.lock` file beside it, made exclusively) from the
/// moment it is read until the new state replaces it.
pub struct FileHold {
    path: PathBuf,
    lock: PathBuf,
}

impl FileHold {
    /// Locks the state at `path` and reads it, if there is one.
    pub fn take(path: &Path) -> Result<(FileHold, Option<Vec<u8>>), StateError> {
        let lock = lock_path(path);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&lock)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => StateError::Refused(format!(
                    "{}: the state is locked by another run ({} exists{}); if no run is going on, remove it",
                    path.display(),
                    lock.display(),
                    lock_holder(&lock)
                )),
                _ => StateError::Io(format!("cannot lock the state {}: {e}", lock.display())),
            })?;
        let _ = std::io::Write::write_all(
            &mut file,
            format!(
                "process {} since {}\n",
                std::process::id(),
                format_time(chrono::Utc::now())
            )
            .as_bytes(),
        );
        let hold = FileHold {
            path: path.to_path_buf(),
            lock,
        };
        let name = path.display().to_string();
        let bytes = match crate::store::local::open_regular(path, &name) {
            Ok(f) => Some(
                crate::store::local::read_file(&name, f, MAX_STATE_BYTES).map_err(|e| {
                    StateError::Io(format!("cannot read the state {name}: {}", e.cause()))
                })?,
            ),
            Err(StoreError::NotFound { .. }) => None,
            Err(e) => {
                return Err(StateError::Io(format!(
                    "cannot read the state {name}: {}",
                    e.cause()
                )))
            }
        };
        Ok((hold, bytes))
    }

    /// Replaces the state with `bytes` (written beside it, then renamed over it).
    pub fn write(&self, bytes: &[u8]) -> Result<(), StateError> {
        let tmp = beside(&self.path, ".tmp");
        let io = |e: std::io::Error| {
            StateError::Io(format!(
                "cannot write the state {}: {e}",
                self.path.display()
            ))
        };
        // A file left there (by a run that crashed, or planted as a link) is replaced, never
        // written through.
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
            _ => {}
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(io)?;
        std::io::Write::write_all(&mut file, bytes)
            .and_then(|_| file.sync_all())
            .map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)
    }
}

impl Drop for FileHold {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.lock);
    }
}

fn lock_path(path: &Path) -> PathBuf {
    beside(path, ".lock")
}

/// `path` with `suffix` added to its file name.
fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// What a lock file says of the run holding it: its first 200 bytes, if it is a regular file,
/// with anything unprintable escaped.
fn lock_holder(lock: &Path) -> String {
    let name = lock.display().to_string();
    let Ok(file) = crate::store::local::open_regular(lock, &name) else {
        return String::new();
    };
    let mut bytes = Vec::new();
    let _ = std::io::Read::read_to_end(&mut std::io::Read::take(file, 200), &mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    format!(": {}", text.trim().escape_debug())
}

/// Where a held state is kept, and how it is replaced.
enum Keeper {
    File(FileHold),
    S3 {
        store: crate::store::S3Store,
        key: String,
        etag: Option<String>,
    },
}

/// A run's state, held from before the run until the new state replaces it.
pub struct Held {
    pub place: Place,
    keeper: Keeper,
    /// The state found and its SHA-256; `None` for a first run or a reset.
    pub prior: Option<(State, String)>,
    key: Option<SigningKey>,
    pub reset: bool,
    pub slice: Option<Slice>,
    pub proof: std::sync::Arc<crate::verify::Proof>,
    /// Whether anything was found at the place (used or, with a reset, not).
    found: bool,
}

impl Held {
    /// Locks and reads the state file at `path`.
    pub fn file(
        path: &Path,
        key: Option<SigningKey>,
        reset: bool,
        slice: Option<Slice>,
    ) -> Result<Held, StateError> {
        let (hold, bytes) = FileHold::take(path)?;
        Held::new(
            Place::File(path.to_path_buf()),
            Keeper::File(hold),
            bytes,
            key,
            reset,
            slice,
        )
    }

    /// Reads the state object `key` of `store` (whose ETag the new state's write is
    /// conditional on).
    pub async fn s3(
        store: crate::store::S3Store,
        key: &str,
        signing: Option<SigningKey>,
        reset: bool,
        slice: Option<Slice>,
    ) -> Result<Held, StateError> {
        let place = Place::S3 {
            bucket: crate::store::Store::bucket(&store).to_string(),
            key: key.to_string(),
        };
        let (bytes, etag) = match store.get_up_to(key, MAX_STATE_BYTES).await {
            Ok((object, version)) => (Some(object.bytes), version.etag),
            Err(StoreError::NotFound { .. }) => (None, None),
            Err(e) => {
                return Err(StateError::Io(format!(
                    "cannot read the state {place}: {}",
                    e.cause()
                )))
            }
        };
        let keeper = Keeper::S3 {
            store,
            key: key.to_string(),
            etag,
        };
        Held::new(place, keeper, bytes, signing, reset, slice)
    }

    fn new(
        place: Place,
        keeper: Keeper,
        bytes: Option<Vec<u8>>,
        key: Option<SigningKey>,
        reset: bool,
        slice: Option<Slice>,
    ) -> Result<Held, StateError> {
        let found = bytes.is_some();
        let prior = match bytes {
            Some(bytes) if !reset => {
                let state = State::open(&bytes, &place.to_string(), key.as_ref())?;
                let sha256 = sha256_hex(&canonical(&state));
                Some((state, sha256))
            }
            _ => None,
        };
        Ok(Held {
            place,
            keeper,
            prior,
            key,
            reset,
            slice,
            proof: Default::default(),
            found,
        })
    }

    /// Has the run resume where the state's anchors are, and keep what it proves.
    pub fn prepare(&self, opts: &mut crate::verify::Options) {
        if let Some((state, _)) = &self.prior {
            opts.resume = Some(std::sync::Arc::new(state.resume()));
        }
        opts.proof = Some(self.proof.clone());
    }

    /// Refuses a state of another bucket, or one whose anchors do not verify under `keys`.
    pub fn check(&self, bucket: &str, keys: &KeyRing) -> Result<(), StateError> {
        match &self.prior {
            Some((state, _)) => state.check_anchors(bucket, keys),
            None => Ok(()),
        }
    }

    /// After the run: re-checks what the state covered, adds what it found to `report`, and
    /// records in the report what the run carried. What the run proved is taken for the new
    /// state.
    pub async fn recheck<S: Store>(
        &mut self,
        store: &S,
        report: &mut crate::report::Report,
        opts: &crate::verify::Options,
    ) -> (BTreeMap<Location, LocationProof>, BTreeSet<Location>) {
        let proof = self.proof.take();
        let found = match &self.prior {
            Some((state, _)) => recheck(store, state, &proof, opts, self.slice).await,
            None => Recheck::default(),
        };
        let anchors = self.prior.as_ref().map_or(0, |(s, _)| {
            s.locations.iter().map(|l| l.anchors.len()).sum()
        });
        let before: HashSet<&str> = self
            .prior
            .iter()
            .flat_map(|(s, _)| &s.locations)
            .flat_map(|l| &l.ledger)
            .map(|r| r.key.as_str())
            .collect();
        let digests_verified = proof
            .values()
            .flat_map(|p| &p.objects)
            .filter(|(key, o)| o.object == "digest" && !before.contains(key.as_str()))
            .count();
        report.findings.extend(found.findings);
        report
            .findings
            .sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        report.unverified.extend(found.unverified);
        report.unverified.sort();
        report.unverified.dedup();
        let mut held: Vec<String> = proof
            .iter()
            .filter(|(l, p)| !p.complete || found.troubled.contains(*l))
            .map(|(l, _)| l.account_root() + &l.region)
            .collect();
        held.extend(
            found
                .troubled
                .iter()
                .filter(|l| !proof.contains_key(*l))
                .map(|l| l.account_root() + &l.region),
        );
        if self.reset {
            report.notes.push(format!(
                "--state-reset: the state at {} was {}; this run verified everything and starts a new state",
                self.place,
                if self.found { "set aside unread" } else { "not there" }
            ));
        }
        report.state = Some(Box::new(StateRun {
            path: self.place.to_string(),
            previous: self.prior.as_ref().map(|(_, sha)| sha.clone()),
            sequence: self.prior.as_ref().map_or(1, |(s, _)| s.sequence + 1),
            reset: self.reset,
            anchors,
            digests_verified,
            objects_relisted: found.relisted,
            objects_compared: found.compared,
            objects_reread: found.reread,
            objects_rehashed: found.rehashed,
            reverify: self.slice.map(|s| s.to_string()),
            held,
        }));
        if report
            .state
            .as_ref()
            .is_some_and(|s| s.anchors > 0 && s.objects_compared > 0)
        {
            report.notes.retain(|n| !n.starts_with("nothing to verify"));
        }
        report.exit_code = report.decide_exit_code();
        (proof, found.troubled)
    }

    /// Writes the state the run leaves, given the run's final JSON report; its SHA-256.
    pub async fn write(
        self,
        bucket: &str,
        proof: BTreeMap<Location, LocationProof>,
        troubled: &BTreeSet<Location>,
        horizon: Timestamp,
        report_json: &[u8],
    ) -> Result<String, StateError> {
        let (prior, prior_sha) = match &self.prior {
            Some((s, sha)) => (Some(s), Some(sha.as_str())),
            None => (None, None),
        };
        let state = advance(
            prior,
            prior_sha,
            bucket,
            proof,
            troubled,
            horizon,
            sha256_hex(report_json),
        );
        let (bytes, sha256) = state.seal(self.key.as_ref());
        match &self.keeper {
            Keeper::File(hold) => hold.write(&bytes)?,
            Keeper::S3 { store, key, etag } => store
                .put_if(key, bytes, etag.as_deref())
                .await
                .map_err(StateError::Io)?,
        }
        Ok(sha256)
    }
}
