//! `dispatcher health --once [--url URL]`: one probe of a service's `/health`; exit 0 when it
//! answers 200 with `status: healthy`, 1 otherwise (unreachable, unhealthy, not JSON).

use std::time::Duration;

use crate::cli::HealthArgs;

pub fn run(args: &HealthArgs) -> anyhow::Result<()> {
    let runtime = app::service::runtime()?;
    let outcome = runtime.block_on(async {
        let client = adapters::http::client(Duration::from_secs(10)).map_err(anyhow::Error::msg)?;
        let response =
            client.get(&args.url).send().await.map_err(|e| {
                anyhow::anyhow!("{}: {}", args.url, adapters::http::without_url(&e))
            })?;
        let status = response.status();
        let body: serde_json::Value = response
            .json()
            .await
            .map_err(|_| anyhow::anyhow!("{}: the answer is not JSON", args.url))?;
        anyhow::Ok((status, body))
    });
    let (status, body) = outcome?;
    println!("{}", serde_json::to_string_pretty(&body)?);
    if status.is_success() && body["status"] == "healthy" {
        Ok(())
    } else {
        anyhow::bail!("{} is not healthy (HTTP {})", args.url, status.as_u16())
    }
}
