//! Users and their tokens, inside the tenant's own database (ISOLATED identity): the same email
//! in two tenants is two accounts, and nothing here ever touches another tenant's pool.

mod access_token;
mod api_token;
mod email;
mod invitation;
mod password;
mod refresh_token;
mod role;
mod scope;
mod secret_token;
mod user;

pub use access_token::{AccessClaims, AccessTokens};
pub use api_token::{ApiToken, ApiTokens};
pub use email::Email;
pub use invitation::Invitation;
pub use password::{validate_password, PasswordHasher, PASSWORD_MAX_LEN, PASSWORD_MIN_LEN};
pub use refresh_token::RefreshTokens;
pub use role::Role;
pub use scope::Scope;
pub use user::{validate_name, NewUser, User, NAME_MAX};
