//! Arguments and dispatch of `policy`, `users`, `teams` and `usage`.

use crate::cli::{identity, policy};
use anyhow::Result;
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;

/// `portcullis policy ...`.
#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Validate a policy document: every problem with its path, warnings; exit 1 if invalid.
    Validate {
        /// The YAML policy document.
        file: PathBuf,
    },
    /// Show what a document changes against the active version.
    Diff {
        /// YAML configuration file (for the store location).
        #[arg(long, env = "PORTCULLIS_CONFIG")]
        config: Option<PathBuf>,
        /// The YAML policy document.
        file: PathBuf,
    },
    /// Store a document as a new version and enforce it (or run it in shadow mode).
    Apply {
        /// YAML configuration file (for the store location).
        #[arg(long, env = "PORTCULLIS_CONFIG")]
        config: Option<PathBuf>,
        /// The YAML policy document.
        file: PathBuf,
        /// Why, for the history.
        #[arg(long)]
        comment: Option<String>,
        /// Evaluate on live traffic next to the active version without enforcing it.
        #[arg(long)]
        shadow: bool,
        /// Author recorded with the version (default: $USER, else "cli").
        #[arg(long)]
        author: Option<String>,
    },
    /// List every version (active and shadow marked).
    History {
        /// YAML configuration file (for the store location).
        #[arg(long, env = "PORTCULLIS_CONFIG")]
        config: Option<PathBuf>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print one version's document.
    Show {
        /// YAML configuration file (for the store location).
        #[arg(long, env = "PORTCULLIS_CONFIG")]
        config: Option<PathBuf>,
        /// Version number.
        version: i64,
    },
    /// Enforce an earlier version again (history is never rewritten).
    Rollback {
        /// YAML configuration file (for the store location).
        #[arg(long, env = "PORTCULLIS_CONFIG")]
        config: Option<PathBuf>,
        /// Version number.
        version: i64,
    },
    /// Summarize the requests the shadow version decided differently.
    ShadowReport {
        /// YAML configuration file (for the store location).
        #[arg(long, env = "PORTCULLIS_CONFIG")]
        config: Option<PathBuf>,
        /// Report on this version instead of the current shadow.
        #[arg(long)]
        version: Option<i64>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Enforce the shadow version.
    Promote {
        /// YAML configuration file (for the store location).
        #[arg(long, env = "PORTCULLIS_CONFIG")]
        config: Option<PathBuf>,
    },
    /// End shadow mode without enforcing the shadow version.
    Discard {
        /// YAML configuration file (for the store location).
        #[arg(long, env = "PORTCULLIS_CONFIG")]
        config: Option<PathBuf>,
    },
}

/// `portcullis users ...`.
#[derive(Subcommand)]
pub enum UsersCommand {
    /// Create a user; prints its id.
    Create {
        /// YAML configuration file (for the store location).
        #[arg(long, env = "PORTCULLIS_CONFIG")]
        config: Option<PathBuf>,
        /// Unique name.
        #[arg(long)]
        name: String,
        /// Contact address.
        #[arg(long)]
        email: Option<String>,
        /// Team.
        #[arg(long)]
        team: Option<String>,
        /// Role (built-in or defined by the active policy).
        #[arg(long, default_value = "developer")]
        role: String,
    },
    /// List users.
    List {
        /// YAML configuration file (for the store location).
        #[arg(long, env = "PORTCULLIS_CONFIG")]
        config: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Disable a user.
    Disable {
        /// YAML configuration file (for the store location).
        #[arg(long, env = "PORTCULLIS_CONFIG")]
        config: Option<PathBuf>,
        /// User id (user_...).
        id: String,
    },
}

/// `portcullis teams ...`.
#[derive(Subcommand)]
pub enum TeamsCommand {
    /// Create a team.
    Create {
        /// YAML configuration file (for the store location).
        #[arg(long, env = "PORTCULLIS_CONFIG")]
        config: Option<PathBuf>,
        /// Team name.
        name: String,
        /// Free text.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List teams.
    List {
        /// YAML configuration file (for the store location).
        #[arg(long, env = "PORTCULLIS_CONFIG")]
        config: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a `policy` subcommand.
pub async fn policy(command: PolicyCommand) -> Result<ExitCode> {
    use PolicyCommand::*;
    match command {
        Validate { file } => policy::validate(&file),
        Diff { config, file } => policy::diff(config.as_deref(), &file).await,
        Apply {
            config,
            file,
            comment,
            shadow,
            author,
        } => {
            let (c, a) = (comment.as_deref(), author.as_deref());
            policy::apply(config.as_deref(), &file, c, shadow, a).await
        }
        History { config, json } => policy::history(config.as_deref(), json).await,
        Show { config, version } => policy::show(config.as_deref(), version).await,
        Rollback { config, version } => policy::rollback(config.as_deref(), version).await,
        ShadowReport {
            config,
            version,
            json,
        } => policy::shadow_report(config.as_deref(), version, json).await,
        Promote { config } => policy::promote(config.as_deref()).await,
        Discard { config } => policy::discard(config.as_deref()).await,
    }
}

/// Runs a `users` subcommand.
pub async fn users(command: UsersCommand) -> Result<ExitCode> {
    match command {
        UsersCommand::Create {
            config,
            name,
            email,
            team,
            role,
        } => identity::create_user(config.as_deref(), name, email, team, role).await,
        UsersCommand::List { config, json } => identity::list_users(config.as_deref(), json).await,
        UsersCommand::Disable { config, id } => {
            identity::disable_user(config.as_deref(), &id).await
        }
    }
}

/// Runs a `teams` subcommand.
pub async fn teams(command: TeamsCommand) -> Result<ExitCode> {
    match command {
        TeamsCommand::Create {
            config,
            name,
            description,
        } => identity::create_team(config.as_deref(), &name, &description).await,
        TeamsCommand::List { config, json } => identity::list_teams(config.as_deref(), json).await,
    }
}
