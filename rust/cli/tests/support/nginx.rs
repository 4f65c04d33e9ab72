//! Debian's nginx as the reverse proxy of docs/deploy.md, run by a test: its own config,
//! prefix and logs in a temp dir, on a loopback port, stopped when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Nginx {
    child: Child,
    dir: PathBuf,
    pub port: u16,
    tls: bool,
    /// With `start_cluster`: one listening port per node.
    pub fronts: Vec<u16>,
}

/// A certificate chain and key (PEM files) for nginx to serve TLS with.
pub struct Tls {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The nginx binary, or a failure that says how to get it (never a silent skip).
fn binary() -> PathBuf {
    let candidates = ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"];
    candidates.iter().map(PathBuf::from).find(|p| p.exists()).unwrap_or_else(|| {
        panic!("nginx is not installed (looked in {candidates:?}): run scripts/bootstrap")
    })
}

/// The `location` block of docs/deploy.md: the WebSocket upgrade passed through, and
/// timeouts above the server's keepalive (15 s pings; 45 s of silence closes).
const LOCATION: &str = r#"
      proxy_pass http://duet;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_read_timeout 75s;
      proxy_send_timeout 75s;
"#;

impl Nginx {
    /// nginx on a free loopback port, proxying to `upstreams` (the first the primary, the
    /// others backups, as a second node takes over a drained one).
    pub fn start(upstreams: &[u16]) -> Nginx {
        Self::start_with(upstreams, None)
    }

    /// The same, terminating TLS with `tls` as docs/deploy.md's server block does.
    pub fn start_with(upstreams: &[u16], tls: Option<&Tls>) -> Nginx {
        let port = super::free_port();
        let dir = std::env::temp_dir().join(format!("duet-nginx-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("nginx temp dir");
        let conf = config(&dir, port, upstreams, tls);
        Self::launch(dir, &conf, port, tls.is_some(), Vec::new())
    }

    /// nginx in front of a cluster's `nodes`, with one listening port per node: port `i`
    /// sends to node `i` while it is up and to the others when it is not (nginx marks a
    /// refusing server down and tries the next), so a test decides where a client lands
    /// and the client fails over as it would behind any balancer. `front_url(i)`.
    pub fn start_cluster(nodes: &[u16]) -> Nginx {
        let dir = std::env::temp_dir().join(format!(
            "duet-nginx-cluster-{}-{}",
            std::process::id(),
            nodes[0]
        ));
        std::fs::create_dir_all(&dir).expect("nginx temp dir");
        let fronts: Vec<u16> = nodes.iter().map(|_| super::free_port()).collect();
        // A front tries its next node after a second when one does not answer.
        let mut http = String::from("  proxy_connect_timeout 1s;\n");
        for (i, front) in fronts.iter().enumerate() {
            let servers: String = (0..nodes.len())
                .map(|k| {
                    let node = nodes[(i + k) % nodes.len()];
                    let backup = if k == 0 { "" } else { " backup" };
                    format!("    server 127.0.0.1:{node} max_fails=1 fail_timeout=2s{backup};\n")
                })
                .collect();
            http.push_str(&format!(
                "  upstream duet{i} {{\n{servers}  }}\n  server {{\n    listen 127.0.0.1:{front};\n    location / {{{}    }}\n  }}\n",
                LOCATION.replace("http://duet;", &format!("http://duet{i};"))
            ));
        }
        let conf = preamble(&dir).replace("HTTP_BLOCKS", &http);
        Self::launch(dir, &conf, fronts[0], false, fronts)
    }

    /// Writes `conf` into `dir`, starts nginx on it, and waits until `port` and every one
    /// of `fronts` accept connections.
    fn launch(dir: PathBuf, conf: &str, port: u16, tls: bool, fronts: Vec<u16>) -> Nginx {
        std::fs::write(dir.join("nginx.conf"), conf).expect("nginx.conf");
        let child = Command::new(binary())
            .args(["-p", &dir.display().to_string(), "-c", "nginx.conf", "-e", "error.log"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("nginx starts");
        let nginx = Nginx { child, dir, port, tls, fronts };
        for port in std::iter::once(nginx.port).chain(nginx.fronts.iter().copied()) {
            nginx.wait_listening(port);
        }
        nginx
    }

    /// The URL of the front that prefers node `i` (`start_cluster`).
    pub fn front_url(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.fronts[i])
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    fn wait_listening(&self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nginx is not listening: {}", self.error_log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }
}

fn config(dir: &Path, port: u16, upstreams: &[u16], tls: Option<&Tls>) -> String {
    let ssl = match tls {
        None => String::new(),
        Some(t) => format!(
            "    ssl_certificate {};\n    ssl_certificate_key {};\n",
            t.cert.display(),
            t.key.display()
        ),
    };
    let listen = if tls.is_some() { " ssl" } else { "" };
    let servers: String = upstreams
        .iter()
        .enumerate()
        .map(|(i, p)| format!("    server 127.0.0.1:{p}{};\n", if i == 0 { "" } else { " backup" }))
        .collect();
    let http = format!(
        "  upstream duet {{\n{servers}  }}\n  server {{\n    listen 127.0.0.1:{port}{listen};\n{ssl}    location / {{{LOCATION}    }}\n  }}\n"
    );
    preamble(dir).replace("HTTP_BLOCKS", &http)
}

/// The http block's common part, `HTTP_BLOCKS` standing for its upstreams and servers.
fn preamble(dir: &Path) -> String {
    let d = dir.display();
    format!(
        r#"daemon off;
worker_processes 1;
pid {d}/nginx.pid;
events {{ worker_connections 512; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  map $http_upgrade $connection_upgrade {{
    default upgrade;
    ''      close;
  }}
HTTP_BLOCKS}}
"#
    )
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
