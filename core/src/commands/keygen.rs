//! `kiln keygen`: a cosign key pair, the password from `KILN_SIGNING_PASSWORD`.

use kiln_cli::KeygenArgs;

use super::Printer;
use crate::env::{self, Env};
use crate::error::Error;
use crate::reporter::Reporter as _;

pub fn run(args: KeygenArgs, env: Env, printer: &Printer) -> Result<u8, Error> {
    let password = crate::sign::keyring::password(&env);
    if secrecy::ExposeSecret::expose_secret(&password).is_empty() {
        printer.warn(&format!(
            "the private key is encrypted with an empty password: set {} to choose one",
            env::KILN_SIGNING_PASSWORD
        ));
    }
    let (private, public) = crate::sign::keyring::write_pair(&args.output_dir, &password)?;
    printer.info(&format!(
        "wrote      {} (private: keep it secret, e.g. as the CI secret {})",
        private.display(),
        env::KILN_SIGNING_KEY
    ));
    printer.info(&format!(
        "wrote      {} (public: `kiln verify --key {}` and `cosign verify --key` check with it)",
        public.display(),
        public.display()
    ));
    Ok(0)
}
