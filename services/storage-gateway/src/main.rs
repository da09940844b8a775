//! Starts the storage gateway alone (the server is assembled in the following steps of the
//! storage issue).

fn main() {
    println!(
        "{} (port {})",
        serrano_storage_gateway::SERVICE,
        serrano_storage_gateway::DEFAULT_PORT
    );
}
