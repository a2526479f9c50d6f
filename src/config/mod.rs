//! `node.toml`: everything an operator configures about one node.
//!
//! - [`sections`]: the file as plain data with its documented defaults;
//! - [`values`]: the value types (ASN setting, listen addresses,
//!   durations with units);
//! - [`validate`]: the checks serde cannot make, reporting every problem
//!   at once;
//! - [`template()`]: the commented file `abgp init` writes (template.toml).
//!
//! [`NodeConfig::load`] parses with unknown keys refused, then validates.
//! Syntax and type errors name the key path (`neighbor[1].address`), line
//! and column; invalid values name their key paths, all of them in one
//! error. Relative paths in the file are relative to its directory
//! ([`LoadedConfig::resolve`]).

pub mod balance;
pub mod health;
pub mod nat;
pub mod routing;
pub mod sections;
pub mod template;
pub mod validate;
pub mod values;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::core::access::{AccessConfigError, AccessPolicy};
use crate::core::ids::Asn;
use crate::mcp::config::{AgentConfig, AgentConfigError};

pub use sections::{
    AdminSection, AnchorConfig, DiscoverySection, LogSection, McpSection, NeighborConfig,
    NetworkSection, NodeConfig, NodeSection, OriginValidation, OriginateConfig, PolicySection,
    SessionSection, StoreSection, TrustSection,
};
pub use template::template;
pub use validate::parse_asn_range;
pub use values::{AsnSetting, CertSource, KadMode, Listen};

/// File name `abgp init` writes and `abgp run` looks for in a directory.
pub const CONFIG_FILE_NAME: &str = "node.toml";

/// One value that makes no sense: where it is and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The key path: `session.hold_time`, `neighbor[1].address`.
    pub key: String,
    pub message: String,
}

impl Problem {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// The problems of one file, shown one per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    /// The key paths, in file order.
    pub fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|p| p.key.as_str()).collect()
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [one] => write!(f, "{one}"),
            many => {
                write!(f, "{} problems:", many.len())?;
                for p in many {
                    write!(f, "\n  {p}")?;
                }
                Ok(())
            }
        }
    }
}

/// Why a config file was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Syntax, unknown key or wrong type (serde stops at the first).
    #[error("{path}:{line}:{column}: {key}: {message}")]
    Parse {
        path: PathBuf,
        key: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// Values of the right type that make no sense: every one of them.
    #[error("{path}: {problems}")]
    Invalid { path: PathBuf, problems: Problems },
}

impl ConfigError {
    /// The key paths of the problems (one for a parse error, none for I/O).
    pub fn keys(&self) -> Vec<&str> {
        match self {
            ConfigError::Io { .. } => Vec::new(),
            ConfigError::Parse { key, .. } => vec![key.as_str()],
            ConfigError::Invalid { problems, .. } => problems.keys(),
        }
    }
}

/// An `[[agents]]` entry that was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum AgentsError {
    /// The entry at this index does not parse or check.
    #[error("agents[{index}]: {message}")]
    Entry { index: usize, message: String },
    /// The entries conflict (a duplicate id).
    #[error("agents: {0}")]
    Set(#[from] AgentConfigError),
}

impl AgentsError {
    fn problem(&self) -> Problem {
        match self {
            AgentsError::Entry { index, message } => {
                Problem::new(format!("agents[{index}]"), message.clone())
            }
            AgentsError::Set(e) => Problem::new("agents", e.to_string()),
        }
    }
}

/// A parsed and checked config plus the directory its paths are relative to.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub config: NodeConfig,
    pub path: PathBuf,
    pub dir: PathBuf,
}

impl LoadedConfig {
    /// A path from the file, made absolute against the file's directory.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        let full = if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.dir.join(p)
        };
        // `components` drops the `.` segments (`data_dir = "."`).
        full.components().collect()
    }

    pub fn key_path(&self) -> PathBuf {
        self.resolve(&self.config.node.key_file)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.resolve(&self.config.node.data_dir)
    }

    pub fn store_dir(&self) -> PathBuf {
        self.data_dir().join("store")
    }

    pub fn admin_token_path(&self) -> PathBuf {
        self.resolve(&self.config.admin.token_file)
    }

    pub fn policy_path(&self) -> Option<PathBuf> {
        let f = &self.config.policy.file;
        (!f.as_os_str().is_empty()).then(|| self.resolve(f))
    }
}

impl NodeConfig {
    /// The neighbours that are our transparent route servers (their ASNs go
    /// into the trust store as allowed to sign with pcount 0).
    pub fn route_servers(&self) -> impl Iterator<Item = &NeighborConfig> {
        self.neighbors.iter().filter(|n| n.route_server)
    }

    /// The `[[agents]]` entries, validated.
    pub fn agent_configs(&self) -> Result<Vec<AgentConfig>, AgentsError> {
        let mut out = Vec::with_capacity(self.agents.len());
        for (index, v) in self.agents.iter().enumerate() {
            let a = AgentConfig::deserialize(v.clone()).map_err(|e| AgentsError::Entry {
                index,
                message: e.to_string(),
            })?;
            out.push(a);
        }
        crate::mcp::config::validate_agents(&out)?;
        Ok(out)
    }

    /// Key paths of the settings in this file that hold secrets (the
    /// front's bearer token; agents' tokens, headers and environment), for
    /// the warning about a config file others can read.
    pub fn secret_keys(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.mcp.bearer_token.is_some() {
            out.push("mcp.bearer_token".to_string());
        }
        for (i, a) in self.agents.iter().enumerate() {
            for k in ["bearer_token", "bearer-token", "headers", "env"] {
                let set = match a.get(k) {
                    Some(toml::Value::Table(t)) => !t.is_empty(),
                    Some(toml::Value::String(s)) => !s.is_empty(),
                    Some(_) => true,
                    None => false,
                };
                if set {
                    out.push(format!("agents[{i}].{k}"));
                }
            }
        }
        out
    }

    /// The `[[access]]` rules compiled for a node of AS `own`.
    pub fn access_policy(&self, own: Asn) -> Result<AccessPolicy, AccessConfigError> {
        AccessPolicy::compile(own, &self.access, self.mcp.access_default)
    }

    /// Reads, parses and checks a config file.
    pub fn load(path: &Path) -> Result<LoadedConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let config = Self::parse(&text, path)?;
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        // Absolute, so logs and the store path do not depend on the cwd.
        let dir = std::path::absolute(&dir).unwrap_or(dir);
        Ok(LoadedConfig {
            config,
            path: path.to_path_buf(),
            dir,
        })
    }

    /// Parses and checks config text; `path` is only used in errors.
    pub fn parse(text: &str, path: &Path) -> Result<NodeConfig, ConfigError> {
        let de = toml::Deserializer::new(text);
        let config: NodeConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let inner = e.into_inner();
            let (line, column) = inner
                .span()
                .map(|s| line_col(text, s.start))
                .unwrap_or((0, 0));
            ConfigError::Parse {
                path: path.to_path_buf(),
                key: if key == "." {
                    "(top level)".into()
                } else {
                    key
                },
                line,
                column,
                message: inner.message().to_string(),
            }
        })?;
        let problems = config.problems();
        if !problems.is_empty() {
            return Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                problems: Problems(problems),
            });
        }
        Ok(config)
    }

    /// Every value that makes no sense (empty when the file is good).
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = validate::problems(self);
        out.extend(health::problems(&self.health));
        out.extend(nat::problems(&self.nat));
        if let Err(e) = self.agent_configs() {
            out.push(e.problem());
        }
        // The ASN is only known once the key is loaded; "own" compiles to
        // any ASN here, so this checks everything but that.
        if let Err(e) = self.access_policy(Asn(1)) {
            out.push(Problem::new("access", e.to_string()));
        }
        out
    }
}

/// Reads and compiles the policy file at `path` (the core compiles text;
/// reading files is the config's). Errors name the path as given.
pub fn load_policy_file(
    path: &Path,
) -> Result<crate::core::policy::PolicySet, crate::core::policy::PolicyLoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| {
        crate::core::policy::PolicyLoadError::Io {
            path: path.to_path_buf(),
            source,
        }
    })?;
    crate::core::policy::PolicySet::from_toml_str(&text, &path.display().to_string())
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |i| before.len() - i - 1)
        + 1;
    (line, column)
}

/// `text` parsed as the file `node.toml`, its error as text: for the
/// sections' own tests.
#[cfg(test)]
pub(crate) fn parse_for_test(text: &str) -> Result<NodeConfig, String> {
    NodeConfig::parse(text, std::path::Path::new("node.toml")).map_err(|e| e.to_string())
}
