//! Administrators' pages: staff accounts (add, disable, reset, change role) and the audit
//! log (view, filter, download as CSV).

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use super::views::{self, render, Choice, Nav};
use super::{Dashboard, Staff, WebError};
use crate::staff::accounts::{self, AccountError, Change};
use crate::staff::audit::{self, Action};
use crate::staff::Role;

pub fn routes() -> Router<Dashboard> {
    Router::new()
        .route("/admin/users", get(users_page).post(add_user))
        .route("/admin/users/{id}", post(change_user))
        .route("/admin/audit", get(audit_page))
        .route("/api/audit.csv", get(audit_csv))
}

impl From<AccountError> for WebError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::Store(s) => WebError::Store(s),
            AccountError::NotFound => WebError::NotFound,
            AccountError::Changed => WebError::Conflict(AccountError::Changed.to_string()),
            other => WebError::BadRequest(other.to_string()),
        }
    }
}

async fn users_view(
    d: &Dashboard,
    staff: &Staff,
    link: Option<&str>,
    notice: Option<&str>,
    error: Option<&str>,
) -> Result<Response, WebError> {
    let users = d
        .store
        .list_users()
        .await?
        .into_iter()
        .map(|u| views::UserRow {
            state: if u.disabled {
                "disabled".into()
            } else if u.password_hash.is_none() {
                "waiting for set-up".into()
            } else if u.totp_secret.is_none() {
                "second factor not set up".into()
            } else {
                "active".into()
            },
            roles: Role::ALL
                .iter()
                .map(|r| Choice {
                    value: r.to_string(),
                    label: r.to_string(),
                    selected: *r == u.role,
                })
                .collect(),
            id: u.id,
            email: u.email,
            role: u.role.to_string(),
            disabled: u.disabled,
        })
        .collect();
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Html(render(&views::UsersPage {
            nav: Nav::new(&staff.user, &staff.session.csrf, "users"),
            users,
            link,
            notice,
            error,
        })?),
    )
        .into_response())
}

async fn users_page(State(d): State<Dashboard>, staff: Staff) -> Result<Response, WebError> {
    staff.require(&d, Role::Admin, "users").await?;
    users_view(&d, &staff, None, None, None).await
}

#[derive(Deserialize)]
pub struct NewUserForm {
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub role: String,
    #[serde(default)]
    pub phone: Option<String>,
}

impl Dashboard {
    /// Adds an account (admins only); returns it and its set-up link.
    pub async fn add_account(
        &self,
        staff: &Staff,
        form: &NewUserForm,
    ) -> Result<(crate::staff::User, String), WebError> {
        staff.require(self, Role::Admin, "users").await?;
        let role: Role = form.role.parse().map_err(WebError::BadRequest)?;
        let phone = form.phone.as_deref().filter(|p| !p.trim().is_empty());
        let (user, token) =
            match accounts::add(self.store.as_ref(), &form.email, role, phone, self.now()).await {
                Err(AccountError::Store(crate::store::StoreError::Duplicate(m))) => {
                    return Err(WebError::Conflict(m))
                }
                other => other?,
            };
        self.audit(
            Some(&staff.user),
            Action::AccountCreated,
            Some(&user.id),
            &staff.address,
            Some(role.as_str()),
        )
        .await;
        Ok((user, token.link(&self.public_url)))
    }

    /// Changes an account (admins only); returns a new set-up link after a reset.
    pub async fn change_account(
        &self,
        staff: &Staff,
        id: &str,
        change: &Change,
    ) -> Result<Option<String>, WebError> {
        staff.require(self, Role::Admin, "users").await?;
        let mut user = self.store.user(id).await?.ok_or(WebError::NotFound)?;
        let own = user.id == staff.user.id;
        if own
            && matches!(
                change,
                Change::Disable | Change::Role(Role::Handler | Role::Manager)
            )
        {
            return Err(AccountError::OwnAccount.into());
        }
        let token = accounts::change(self.store.as_ref(), &mut user, change, self.now()).await?;
        let (action, detail) = match change {
            Change::Disable => (Action::AccountDisabled, None),
            Change::Enable => (Action::AccountEnabled, None),
            Change::ResetPassword => (Action::PasswordReset, None),
            Change::Role(r) => (Action::RoleChanged, Some(r.as_str())),
            Change::Phone(_) => (Action::PhoneChanged, None),
        };
        self.audit(
            Some(&staff.user),
            action,
            Some(&user.id),
            &staff.address,
            detail,
        )
        .await;
        Ok(token.map(|t| t.link(&self.public_url)))
    }
}

async fn add_user(
    State(d): State<Dashboard>,
    staff: Staff,
    Form(form): Form<NewUserForm>,
) -> Result<Response, WebError> {
    match d.add_account(&staff, &form).await {
        Ok((_, link)) => users_view(&d, &staff, Some(&link), Some("Account added."), None).await,
        Err(WebError::BadRequest(m)) | Err(WebError::Conflict(m)) => {
            users_view(&d, &staff, None, None, Some(&m)).await
        }
        Err(e) => Err(e),
    }
}

#[derive(Deserialize)]
pub struct ChangeForm {
    #[serde(default)]
    pub action: String,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
}

impl ChangeForm {
    pub fn change(&self) -> Result<Change, WebError> {
        Ok(match self.action.as_str() {
            "disable" => Change::Disable,
            "enable" => Change::Enable,
            "reset" => Change::ResetPassword,
            "role" => Change::Role(
                self.role
                    .as_deref()
                    .unwrap_or("")
                    .parse()
                    .map_err(WebError::BadRequest)?,
            ),
            "phone" => Change::Phone(self.phone.clone().filter(|p| !p.trim().is_empty())),
            other => {
                return Err(WebError::BadRequest(format!(
                    "`{other}` is not an account change: use disable, enable, reset, role or phone"
                )))
            }
        })
    }
}

async fn change_user(
    State(d): State<Dashboard>,
    staff: Staff,
    Path(id): Path<String>,
    Form(form): Form<ChangeForm>,
) -> Result<Response, WebError> {
    let change = form.change()?;
    match d.change_account(&staff, &id, &change).await {
        Ok(link) => users_view(&d, &staff, link.as_deref(), Some("Account changed."), None).await,
        Err(WebError::BadRequest(m)) => users_view(&d, &staff, None, None, Some(&m)).await,
        Err(e) => Err(e),
    }
}

#[derive(Debug, Deserialize, Default)]
pub struct AuditQuery {
    #[serde(default)]
    pub actor: Option<String>,
    #[serde(default)]
    pub action: Option<String>,
    #[serde(default)]
    pub since: Option<String>,
}

impl AuditQuery {
    pub fn query(&self, limit: i64) -> Result<audit::Query, WebError> {
        let since = match self.since.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => Some(
                chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                    .map_err(|_| {
                        WebError::BadRequest(format!("`{s}` is not a date: write it as YYYY-MM-DD"))
                    })?
                    .and_hms_opt(0, 0, 0)
                    .map(|d| d.and_utc())
                    .ok_or_else(|| WebError::BadRequest("bad date".into()))?,
            ),
        };
        let action = match self.action.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(a) => Some(
                Action::parse(a)
                    .ok_or_else(|| WebError::BadRequest(format!("`{a}` is not an audit action")))?
                    .as_str()
                    .to_string(),
            ),
        };
        Ok(audit::Query {
            since,
            until: None,
            actor: self
                .actor
                .clone()
                .filter(|s| !s.is_empty())
                .map(|s| s.trim().to_lowercase()),
            action,
            target: None,
            limit,
        })
    }
}

async fn audit_page(
    State(d): State<Dashboard>,
    staff: Staff,
    Query(q): Query<AuditQuery>,
) -> Result<Response, WebError> {
    staff.require(&d, Role::Admin, "audit").await?;
    let entries = d.store.audit_entries(&q.query(500)?).await?;
    let rows = entries
        .into_iter()
        .map(|e| views::AuditRow {
            at: views::local_time(e.at),
            actor: e.actor,
            action: e.action,
            target: e.target.unwrap_or_default(),
            address: e.address.unwrap_or_default(),
            detail: e.detail.unwrap_or_default(),
        })
        .collect();
    let selected = q.action.clone().unwrap_or_default();
    Ok(Html(render(&views::AuditPage {
        nav: Nav::new(&staff.user, &staff.session.csrf, "audit"),
        rows,
        actor: q.actor.as_deref().unwrap_or(""),
        since: q.since.as_deref().unwrap_or(""),
        actions: Action::ALL
            .iter()
            .map(|a| Choice {
                value: a.as_str().into(),
                label: a.as_str().into(),
                selected: a.as_str() == selected,
            })
            .collect(),
    })?)
    .into_response())
}

async fn audit_csv(
    State(d): State<Dashboard>,
    staff: Staff,
    Query(q): Query<AuditQuery>,
) -> Result<Response, WebError> {
    staff.require(&d, Role::Admin, "audit").await?;
    let mut entries = d.store.audit_entries(&q.query(1_000_000)?).await?;
    entries.reverse();
    let mut out = Vec::new();
    audit::write_csv(&entries, &mut out).map_err(|_| WebError::Render)?;
    d.audit(
        Some(&staff.user),
        Action::AuditExported,
        None,
        &staff.address,
        None,
    )
    .await;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"helpline-audit.csv\"",
            ),
        ],
        out,
    )
        .into_response())
}
