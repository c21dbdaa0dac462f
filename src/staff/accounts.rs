//! Account changes, shared by `helpline users …` and the admin pages. Each one that
//! changes what an account may do ends all of its sessions.

use chrono::{DateTime, Utc};

use super::{Role, SetupToken, User};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Staff(#[from] super::StaffError),
    #[error("no account with that e-mail or id")]
    NotFound,
    #[error("that is not a UK phone number: write it like 07700 900123")]
    BadPhone,
    #[error("the account was changed by someone else meanwhile: reload and try again")]
    Changed,
    #[error("an administrator cannot remove their own administrator role or disable themselves")]
    OwnAccount,
}

/// A change to an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Disable,
    Enable,
    ResetPassword,
    Role(Role),
    Phone(Option<String>),
}

/// Creates an account and returns its one-time set-up link's token.
pub async fn add(
    store: &dyn Store,
    email: &str,
    role: Role,
    phone: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(User, SetupToken), AccountError> {
    let phone = phone.map(parse_phone).transpose()?;
    let (user, token) = User::new(email, role, phone, now)?;
    store.create_user(&user).await?;
    Ok((user, token))
}

fn parse_phone(p: &str) -> Result<String, AccountError> {
    crate::phone::UkNumber::parse(p)
        .map(|n| n.e164().to_string())
        .ok_or(AccountError::BadPhone)
}

/// Finds an account by e-mail or id.
pub async fn find(store: &dyn Store, who: &str) -> Result<User, AccountError> {
    if let Some(u) = store.user(who).await? {
        return Ok(u);
    }
    let email = super::normalise_email(who).map_err(|_| AccountError::NotFound)?;
    store
        .user_by_email(&email)
        .await?
        .ok_or(AccountError::NotFound)
}

/// Applies a change; returns the new set-up token for a password reset.
pub async fn change(
    store: &dyn Store,
    user: &mut User,
    change: &Change,
    now: DateTime<Utc>,
) -> Result<Option<SetupToken>, AccountError> {
    let mut token = None;
    let mut end_sessions = true;
    match change {
        Change::Disable => user.disabled = true,
        Change::Enable => {
            user.disabled = false;
            end_sessions = false;
        }
        Change::ResetPassword => token = Some(user.reset_password(now)),
        Change::Role(r) => user.role = *r,
        Change::Phone(p) => {
            user.phone = p.as_deref().map(parse_phone).transpose()?;
            end_sessions = false;
        }
    }
    user.updated_at = now;
    if !store.update_user(user).await? {
        return Err(AccountError::Changed);
    }
    user.version += 1;
    if end_sessions {
        store.delete_user_sessions(&user.id).await?;
    }
    Ok(token)
}
