//! TLS to Postgres with rustls (Supabase requires it; a local server may not offer it).
//!
//! tokio-postgres negotiates by the URL's `sslmode`: `prefer` uses TLS when the server offers
//! it, `require` insists, `disable` never asks. Where the URL names no `sslmode` and the server is
//! not on this machine, or where a CA is given, [`settle_mode`] makes it `require`. With `DATABASE_CA_CERT` the
//! server's certificate must chain to that CA and name the host. Without it the connection is
//! encrypted but the server is not authenticated, as libpq does for `sslmode=require` — what
//! Supabase's connection strings ask for, since its certificates come from its own CA.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::config::{Config, Host, SslMode};
use tokio_postgres_rustls::MakeRustlsConnect;

use ops::Secret;

use super::StoreError;

/// TLS as a careful operator would set it where the URL leaves it open: a server across a
/// network (any host not on this machine) must speak TLS unless the URL says `sslmode`, and a
/// given CA means TLS is required, never a quiet fallback to plaintext. Once per process it
/// warns where the server goes unauthenticated.
pub fn settle_mode(config: &mut Config, url: &Secret, verified: bool) {
    let explicit =
        url::Url::parse(url.expose()).is_ok_and(|u| u.query_pairs().any(|(k, _)| k == "sslmode"));
    let remote = config.get_hosts().iter().any(|host| match host {
        Host::Tcp(name) => !is_loopback(name),
        Host::Unix(_) => false,
    });
    if config.get_ssl_mode() == SslMode::Prefer && ((remote && !explicit) || verified) {
        config.ssl_mode(SslMode::Require);
    }
    static WARNED: std::sync::Once = std::sync::Once::new();
    if remote {
        let mode = config.get_ssl_mode();
        WARNED.call_once(|| {
            if mode == SslMode::Disable {
                tracing::warn!("DATABASE_URL says sslmode=disable: the database connection crosses the network unencrypted");
            } else if !verified {
                tracing::warn!("the database server's certificate is not verified: set DATABASE_CA_CERT to its CA (Supabase: dashboard → Database → SSL)");
            }
        });
    }
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

pub fn connector(ca_cert: Option<&Path>) -> Result<MakeRustlsConnect, StoreError> {
    crate::http::install_tls_provider();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Tls(e.to_string()))?;
    let config = match ca_cert {
        Some(path) => {
            let bad =
                |e: String| StoreError::Tls(format!("DATABASE_CA_CERT {}: {e}", path.display()));
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))? {
                roots
                    .add(cert.map_err(|e| bad(e.to_string()))?)
                    .map_err(|e| bad(e.to_string()))?;
            }
            if roots.is_empty() {
                return Err(bad("no certificate in the file".into()));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
            .with_no_client_auth(),
    };
    Ok(MakeRustlsConnect::new(config))
}

/// Accepts the server's certificate unchecked but still checks that the server holds its key.
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
