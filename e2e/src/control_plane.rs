use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::wait::{await_condition, conditions};
use tokio::sync::OnceCell;

/// Field manager the fixture applies the CRD with.
const FIELD_MANAGER: &str = "azure-driver-e2e";
const CRD_ESTABLISHED_TIMEOUT: Duration = Duration::from_secs(60);

/// Failure to start or prepare the local control plane.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot run {script}: {source}")]
    Spawn {
        script: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} exited before it was ready (its log is above)")]
    NotReady(PathBuf),
    #[error("reading the output of {script}: {source}")]
    Output {
        script: PathBuf,
        source: std::io::Error,
    },
    #[error("{script} failed (its log is above)")]
    Script { script: PathBuf },
    #[error("kubeconfig {path}: {source}")]
    Kubeconfig {
        path: PathBuf,
        source: kube::config::KubeconfigError,
    },
    #[error("kubernetes client: {0}")]
    Client(#[from] kube::Error),
    #[error("CRD {0} not Established within {CRD_ESTABLISHED_TIMEOUT:?}")]
    CrdNotEstablished(String),
    #[error("kubeconfig file {path}: {source}")]
    KubeconfigFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the TokenRequest for {0} returned no token")]
    NoToken(String),
    #[error("waiting for CRD {name}: {source}")]
    CrdWait {
        name: String,
        source: kube::runtime::wait::Error,
    },
}

/// A running etcd + kube-apiserver + kube-controller-manager.
///
/// Everything is stopped when the `ControlPlane` is dropped, and also when the test
/// process ends in any other way (panic, abort, kill): the script watches the pipe to its
/// stdin, which the operating system closes with the process.
pub struct ControlPlane {
    kubeconfig_path: PathBuf,
    config: kube::Config,
    process: Mutex<Option<(Child, ChildStdin)>>,
}

static SHARED: OnceCell<ControlPlane> = OnceCell::const_new();

impl ControlPlane {
    /// The control plane shared by all tests of this test binary, started on first use,
    /// with the `AzureResource` CRD installed and Established.
    ///
    /// Panics if it cannot start: every test depending on it would fail anyway.
    pub async fn shared() -> &'static ControlPlane {
        SHARED
            .get_or_init(|| async {
                let control_plane = ControlPlane::start()
                    .await
                    .unwrap_or_else(|err| panic!("local control plane: {err}"));
                control_plane
                    .install_crd()
                    .await
                    .unwrap_or_else(|err| panic!("installing the AzureResource CRD: {err}"));
                control_plane
            })
            .await
    }

    /// Starts a control plane of its own (no CRD installed); stopped when dropped.
    pub async fn start() -> Result<ControlPlane, Error> {
        let script = crate::repo_root().join("e2e/scripts/control-plane.sh");
        let (control_plane, _) = ControlPlane::start_script(&script, &[], 0).await?;
        Ok(control_plane)
    }

    /// Runs `script` with `args`, a script that prints an admin kubeconfig's path as its
    /// first stdout line once the cluster is ready, then `more` lines (returned), and
    /// stops everything when its stdin closes.
    pub(crate) async fn start_script(
        script: &Path,
        args: &[PathBuf],
        more: usize,
    ) -> Result<(ControlPlane, Vec<String>), Error> {
        install_crypto_provider();
        let mut child = Command::new(script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|source| Error::Spawn {
                script: script.to_path_buf(),
                source,
            })?;
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        // The first start may build kube binaries (minutes); the script bounds its own waits.
        let lines = tokio::task::spawn_blocking(move || {
            let mut reader = BufReader::new(stdout);
            (0..=more)
                .map(|_| {
                    let mut line = String::new();
                    reader.read_line(&mut line).map(|_| line.trim().to_owned())
                })
                .collect::<Result<Vec<String>, _>>()
        })
        .await
        .expect("reading lines does not panic")
        .map_err(|source| Error::Output {
            script: script.to_path_buf(),
            source,
        })?;
        if lines.iter().any(String::is_empty) {
            let _ = child.wait();
            return Err(Error::NotReady(script.to_path_buf()));
        }
        let kubeconfig_path = PathBuf::from(&lines[0]);
        let kubeconfig =
            Kubeconfig::read_from(&kubeconfig_path).map_err(|source| Error::Kubeconfig {
                path: kubeconfig_path.clone(),
                source,
            })?;
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(|source| Error::Kubeconfig {
                    path: kubeconfig_path.clone(),
                    source,
                })?;
        let control_plane = ControlPlane {
            kubeconfig_path,
            config,
            process: Mutex::new(Some((child, stdin))),
        };
        Ok((control_plane, lines[1..].to_vec()))
    }

    /// A new admin client. Each call makes its own connection pool, so clients never
    /// outlive the (per-test) tokio runtime they were made on.
    pub fn client(&self) -> kube::Client {
        kube::Client::try_from(self.config.clone()).expect("the kubeconfig yields a client")
    }

    /// The admin client configuration.
    pub fn config(&self) -> &kube::Config {
        &self.config
    }

    /// CPU time (user + system, seconds) used so far by the control plane's processes
    /// (etcd, kube-apiserver, kube-controller-manager and the script running them), for
    /// benchmarks that compare a client's cost with the server's.
    pub fn cpu_seconds(&self) -> f64 {
        let script = self
            .process
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|(child, _)| child.id());
        script
            .map(crate::process::process_tree)
            .unwrap_or_default()
            .into_iter()
            .map(crate::process::cpu_seconds)
            .sum()
    }

    /// Admin kubeconfig, usable by `kubectl`, Helm and the project's binaries.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig_path
    }

    /// `kubectl` pointed at this control plane.
    pub fn kubectl(&self) -> Command {
        let mut kubectl = Command::new("kubectl");
        kubectl.arg("--kubeconfig").arg(&self.kubeconfig_path);
        kubectl
    }

    /// A kubeconfig (written next to the admin one) and a client that authenticate as the
    /// ServiceAccount `namespace/name`, for testing RBAC as the workload would see it. The
    /// ServiceAccount must exist; its token is valid for an hour.
    pub async fn service_account_access(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<(PathBuf, kube::Client), Error> {
        let accounts: Api<ServiceAccount> = Api::namespaced(self.client(), namespace);
        let request = TokenRequest {
            spec: TokenRequestSpec {
                expiration_seconds: Some(3600),
                ..TokenRequestSpec::default()
            },
            ..TokenRequest::default()
        };
        let token = accounts
            .create_token_request(name, &PostParams::default(), &request)
            .await?
            .status
            .map(|status| status.token)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| Error::NoToken(format!("{namespace}/{name}")))?;
        let admin = std::fs::read_to_string(&self.kubeconfig_path).map_err(|source| {
            Error::KubeconfigFile {
                path: self.kubeconfig_path.clone(),
                source,
            }
        })?;
        let mut kubeconfig: serde_yaml::Value =
            serde_yaml::from_str(&admin).expect("the script writes valid YAML");
        kubeconfig["users"][0]["name"] = format!("system:serviceaccount:{namespace}:{name}").into();
        kubeconfig["users"][0]["user"] =
            serde_yaml::Mapping::from_iter([("token".into(), token.into())]).into();
        kubeconfig["contexts"][0]["context"]["user"] = kubeconfig["users"][0]["name"].clone();
        kubeconfig["contexts"][0]["context"]["namespace"] = namespace.into();
        let path = self
            .kubeconfig_path
            .with_file_name(format!("kubeconfig-sa-{namespace}-{name}"));
        let text = serde_yaml::to_string(&kubeconfig).expect("YAML values serialize");
        std::fs::write(&path, text).map_err(|source| Error::KubeconfigFile {
            path: path.clone(),
            source,
        })?;
        let parsed = Kubeconfig::read_from(&path).map_err(|source| Error::Kubeconfig {
            path: path.clone(),
            source,
        })?;
        let config = kube::Config::from_custom_kubeconfig(parsed, &KubeConfigOptions::default())
            .await
            .map_err(|source| Error::Kubeconfig {
                path: path.clone(),
                source,
            })?;
        Ok((path, kube::Client::try_from(config)?))
    }

    /// Applies the `AzureResource` CRD (server-side) and waits until it is Established.
    pub async fn install_crd(&self) -> Result<(), Error> {
        let crds: Api<CustomResourceDefinition> = Api::all(self.client());
        crds.patch(
            crds::CRD_NAME,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(crds::crd()),
        )
        .await?;
        let established = await_condition(crds, crds::CRD_NAME, conditions::is_crd_established());
        match tokio::time::timeout(CRD_ESTABLISHED_TIMEOUT, established).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(source)) => Err(Error::CrdWait {
                name: crds::CRD_NAME.to_owned(),
                source,
            }),
            Err(_) => Err(Error::CrdNotEstablished(crds::CRD_NAME.to_owned())),
        }
    }
}

/// kube's rustls needs a process-wide crypto provider; the workspace builds rustls with
/// `ring` only. Installing twice is harmless (the first one stays).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        let process = self.process.get_mut().map(Option::take).unwrap_or_default();
        if let Some((mut child, stdin)) = process {
            // End of file on its stdin is the script's signal to stop everything.
            drop(stdin);
            let _ = child.wait();
        }
    }
}
