//! Low: tokens in webhook URLs never reach logs or viewers.
