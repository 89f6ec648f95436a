//! The one wasmtime engine configuration (precompile and run must agree, or the cached code is
//! refused): Cranelift, component model, pooling allocator, epoch interruption.

use std::hash::{Hash, Hasher};

use anyhow::Result;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Largest linear memory any app may have; the per-app cap (StoreLimits) is at most this.
pub const MAX_MEMORY_BYTES: usize = 1 << 30;

pub fn engine() -> Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    let mut pool = PoolingAllocationConfig::default();
    // One app per process: a componentized C app has a handful of core instances (its module, the
    // WASI adapter, shims) and two memories.
    pool.total_component_instances(2);
    pool.total_core_instances(32);
    pool.total_memories(8);
    pool.total_tables(32);
    pool.max_memory_size(MAX_MEMORY_BYTES);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Ok(Engine::new(&config)?)
}

/// A stable hex digest of the engine's compatibility hash (same across processes and runs).
pub fn compatibility_hash(engine: &Engine) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    format!("{:016x}", h.finish())
}
