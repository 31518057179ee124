//! The multiplexer servers an orchestrator can reach: its own (where new sessions go), and the
//! servers older sessions of the project live on, reached through a factory. A record on a
//! server that cannot be reached is never judged from its pane.

use orch_core::{Multiplexer, MuxServer};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Makes an adapter for another server, or `None` when that server cannot be reached.
pub(crate) type MuxFactory = Arc<dyn Fn(&MuxServer) -> Option<Arc<dyn Multiplexer>> + Send + Sync>;

pub(crate) struct MuxSet {
    primary: Arc<dyn Multiplexer>,
    /// The primary's server, asked once (a refresh looks it up for every record).
    primary_server: MuxServer,
    factory: Option<MuxFactory>,
    others: Mutex<BTreeMap<MuxServer, Option<Arc<dyn Multiplexer>>>>,
}

impl MuxSet {
    pub(crate) fn new(primary: Arc<dyn Multiplexer>, factory: Option<MuxFactory>) -> Self {
        MuxSet {
            primary_server: primary.server(),
            primary,
            factory,
            others: Mutex::default(),
        }
    }

    /// The server new sessions go to.
    pub(crate) fn primary_server(&self) -> &MuxServer {
        &self.primary_server
    }

    pub(crate) fn primary(&self) -> &Arc<dyn Multiplexer> {
        &self.primary
    }

    /// The adapter of `server`, if it can be reached.
    pub(crate) fn get(&self, server: &MuxServer) -> Option<Arc<dyn Multiplexer>> {
        if *server == self.primary_server {
            return Some(Arc::clone(&self.primary));
        }
        let mut others = self.others.lock().unwrap_or_else(|e| e.into_inner());
        others
            .entry(server.clone())
            .or_insert_with(|| self.factory.as_ref().and_then(|f| f(server)))
            .clone()
    }
}
