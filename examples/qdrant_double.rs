//! Runs the Qdrant **test double** (tests/support/qdrant_double.rs) as a server process for the
//! benchmark, so that ngbak's memory can be measured apart from the server's.
//! Usage: qdrant_double COLLECTION POINTS DIM — prints "REST_URL GRPC_URL" and serves until killed.

#[path = "../tests/support/qdrant_double.rs"]
mod qdrant_double;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (name, n, dim) = (&args[1], args[2].parse().expect("POINTS"), args[3].parse().expect("DIM"));
    let double = qdrant_double::QdrantDouble::start(Some("bench-key"), "1.15.4").await;
    double.seed_hybrid(name, n, dim);
    println!("{} {}", double.rest_url, double.grpc_url);
    std::future::pending::<()>().await;
}
