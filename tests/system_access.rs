//! `db.system(reason)` is explicit and logged: it needs a reason, and every handle it makes logs that
//! reason at WARN (target `tenant_scope::system`).

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::TestDb;
use tenant_scope::{Error, TenantDb};

/// A `tracing` writer that keeps everything written to it.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("lock")).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

// Guarantee: system access is logged at WARN with its reason, and refused without one.
common::backend_test!(
    system_access_is_logged_with_its_reason,
    |t: TestDb| async move {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(captured.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::WARN)
            .finish();
        let db = TenantDb::connect(t.url()).await.expect("connect");
        {
            // The subscriber is thread-local; `system` logs synchronously, on this thread.
            let _guard = tracing::subscriber::set_default(subscriber);
            let system = db.system("nightly usage report").expect("system");
            assert_eq!(system.reason(), "nightly usage report");
            assert!(matches!(db.system(""), Err(Error::Invalid(_))));
            assert!(matches!(db.system(" \t"), Err(Error::Invalid(_))));
        }
        let log = captured.text();
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "exactly one WARN line for one handle: {log}"
        );
        assert!(lines[0].contains("WARN"), "{log}");
        assert!(lines[0].contains("tenant_scope::system"), "{log}");
        assert!(lines[0].contains("nightly usage report"), "{log}");
    }
);
