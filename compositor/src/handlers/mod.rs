//! Wayland protocol handlers: one module per protocol family, each ending in its `delegate_*!`.

mod compositor;
mod decoration;
pub mod input_method;
pub mod protocols;
mod seat;
mod xdg_shell;

use smithay::delegate_output;
use smithay::wayland::output::OutputHandler;

use crate::state::State;

impl OutputHandler for State {}
delegate_output!(State);
