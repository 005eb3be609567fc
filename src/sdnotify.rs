//! systemd readiness (`Type=notify`): one datagram to `$NOTIFY_SOCKET` when the server is
//! listening (`READY=1`) and when it begins to stop (`STOPPING=1`). Does nothing when the
//! variable is absent (not under systemd); never fails the server.

use std::os::unix::net::UnixDatagram;

/// Send `state` (e.g. "READY=1\nSTATUS=…") to systemd, if it is listening.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let path = path.to_string_lossy().into_owned();
    let socket = match UnixDatagram::unbound() {
        Ok(s) => s,
        Err(e) => {
            log::warn!("sd_notify: cannot create a socket: {e}");
            return;
        }
    };
    let sent = if let Some(name) = path.strip_prefix('@') {
        // An abstract socket name (Linux).
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
            .and_then(|addr| socket.send_to_addr(state.as_bytes(), &addr))
    } else {
        socket.send_to(state.as_bytes(), &path)
    };
    if let Err(e) = sent {
        log::warn!("sd_notify to {path} failed: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_reaches_a_listening_socket() {
        let dir = std::env::temp_dir().join(format!("cc-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        let listener = UnixDatagram::bind(&path).unwrap();
        // SAFETY of the test: only this test reads or writes NOTIFY_SOCKET.
        crate::sys::set_env_for_test("NOTIFY_SOCKET", Some(path.as_os_str()));
        notify("READY=1\nSTATUS=test");
        crate::sys::set_env_for_test("NOTIFY_SOCKET", None);
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=test");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
