//! OAuth 2.0 client pieces shared by the console's sign-in (server side) and
//! `portico login --sso` (the command line): the token endpoint's answer with the OpenID
//! Connect `id_token`, the client type, and the scopes asked for by default.

use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AuthUrl, ClientId, ClientSecret, EndpointNotSet, EndpointSet, ExtraTokenFields,
    StandardRevocableToken, StandardTokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};

/// The token endpoint's answer with the OpenID Connect `id_token`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct IdTokenField {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

impl ExtraTokenFields for IdTokenField {}

pub type TokenAnswer = StandardTokenResponse<IdTokenField, BasicTokenType>;

/// A client with an authorization and a token endpoint.
pub type OAuthClient = oauth2::Client<
    BasicErrorResponse,
    TokenAnswer,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// Client `client_id` (confidential with `secret`: HTTP Basic authentication; public without)
/// at these endpoints. The error names the endpoint that is not a URL.
pub fn client(
    client_id: &str,
    secret: Option<&str>,
    authorization_endpoint: &str,
    token_endpoint: &str,
) -> Result<OAuthClient, String> {
    let bad =
        |what: &str, e: oauth2::url::ParseError| format!("the provider's {what} is not a URL: {e}");
    let client = oauth2::Client::new(ClientId::new(client_id.to_owned()))
        .set_auth_uri(
            AuthUrl::new(authorization_endpoint.to_owned())
                .map_err(|e| bad("authorization_endpoint", e))?,
        )
        .set_token_uri(
            TokenUrl::new(token_endpoint.to_owned()).map_err(|e| bad("token_endpoint", e))?,
        );
    Ok(match secret {
        Some(secret) => client.set_client_secret(ClientSecret::new(secret.to_owned())),
        None => client,
    })
}

/// `openid` and those of `offline_access`, `email`, `profile` and `groups` the provider lists
/// in `scopes_supported` (all but `groups` when it lists none).
pub fn default_scopes(supported: Option<&[String]>) -> Vec<String> {
    let wanted = ["offline_access", "email", "profile", "groups"];
    let mut scopes: Vec<String> = vec!["openid".to_owned()];
    match supported {
        Some(supported) => scopes.extend(
            wanted
                .iter()
                .filter(|s| supported.iter().any(|x| x == *s))
                .map(|s| (*s).to_owned()),
        ),
        None => scopes.extend(wanted[..3].iter().map(|s| (*s).to_owned())),
    }
    scopes
}
