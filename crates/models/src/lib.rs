//! wgrad's models crate: what a trainer needs on top of the graph crate, and the course's models.
//!
//! - `nn`: layers as plain structs with `forward` and `parameters()`, initialisers, losses;
//! - `optim`: fused in-place optimisers, learning-rate schedules, clipping, Newton's method;
//! - `data`: IDX files, MNIST / Fashion-MNIST, the diabetes table, a seeded loader with
//!   augmentation;
//! - `zoo` and `train`: the image classifiers by name and their training loop;
//! - `classic`: linear regression (four ways), logistic regression, PCA, whitening;
//! - `autoencoder`; `checkpoint` (safetensors, atomic); `report` (metrics JSONL, plots, images).
//!
//! The crate never touches wgpu types: everything goes through `wgrad_graph::Tensor`.

pub mod autoencoder;
pub mod checkpoint;
pub mod classic;
pub mod data;
pub mod nn;
pub mod optim;
pub mod report;
pub mod train;
pub mod zoo;
