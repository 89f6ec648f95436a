//! One running web app: a GTK window with a WebKit view on the compositor, its pages served from the
//! verified package through the `app://` scheme with the app's Content-Security-Policy, its website
//! data (localStorage, IndexedDB, cookies, caches) under its own data dir, network only with the
//! `network` permission, the Cirrus JS API, and the manager's lifecycle signals.

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use anyhow::{Context, Result, bail};
use gtk::prelude::*;
use gtk::{gio, glib};
use javascriptcore::ValueExt;
use std::os::fd::FromRawFd;
use webkit2gtk::{
    CacheModel, NavigationPolicyDecision, NavigationPolicyDecisionExt, NetworkProxyMode,
    NetworkProxySettings, NotificationExt, NotificationPermissionRequest, PermissionRequestExt,
    PolicyDecision, PolicyDecisionExt, PolicyDecisionType, SecurityManagerExt, SecurityOrigin,
    SettingsExt, URIRequestExt, URISchemeRequest, URISchemeRequestExt, URISchemeResponse,
    URISchemeResponseExt, UserContentInjectedFrames, UserContentManager, UserContentManagerExt,
    UserScript, UserScriptInjectionTime, WebContext, WebContextExt, WebView, WebViewExt,
    WebsiteDataManager, WebsiteDataManagerExt,
};

use crate::api::{self, AppInfo, PageMessage};
use crate::csp;
use crate::notify::Notifier;
use crate::package::{AppPackage, SCHEME};

/// `cirrus-web-host run` arguments (given by the app manager).
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The app's id (the package must be this app).
    #[arg(long)]
    pub app_id: String,
    /// The signed package the manager kept at install.
    #[arg(long)]
    pub package: PathBuf,
    /// The publisher key (base64) the installed app is signed with.
    #[arg(long)]
    pub signer: String,
    /// The app's data directory (website data goes under `web/`).
    #[arg(long)]
    pub data_dir: PathBuf,
    /// The compositor's socket (default: $WAYLAND_DISPLAY).
    #[arg(long)]
    pub wayland_display: Option<PathBuf>,
    /// A granted permission (repeatable).
    #[arg(long = "permission")]
    pub permissions: Vec<String>,
    /// The bus notifications are posted on (with the `notifications` permission).
    #[arg(long)]
    pub bus_address: Option<String>,
    /// The user's files (`navigator.cirrus.files`, with the `user-files` permission).
    #[arg(long)]
    pub user_files: Option<PathBuf>,
    /// The build description shown as `navigator.cirrus.device` (device.rs).
    #[arg(long, default_value = crate::device::BUILD_TOML)]
    pub build_info: PathBuf,
    /// The system bus, for `navigator.cirrus.system` (system.rs): given to platform apps only.
    #[arg(long)]
    pub system_bus: Option<String>,
}

/// A bound, never-listening loopback socket: connecting to it is refused at once. Apps without
/// the `network` permission get it as their HTTP(S)/WebSocket proxy, so every network load fails.
fn closed_port() -> Result<(OwnedFd, u16)> {
    // SAFETY: plain socket calls on a descriptor this function owns; the address structs are
    // zero-initialised C structs of the size passed.
    unsafe {
        let raw = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if raw < 0 {
            return Err(std::io::Error::last_os_error())
                .context("creating the closed proxy socket");
        }
        let fd = OwnedFd::from_raw_fd(raw);
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        if libc::bind(fd.as_raw_fd(), (&raw const addr).cast(), len) != 0 {
            return Err(std::io::Error::last_os_error()).context("binding the closed proxy port");
        }
        let mut bound: libc::sockaddr_in = std::mem::zeroed();
        let mut bound_len = len;
        if libc::getsockname(fd.as_raw_fd(), (&raw mut bound).cast(), &mut bound_len) != 0 {
            return Err(std::io::Error::last_os_error()).context("reading the closed proxy port");
        }
        Ok((fd, u16::from_be(bound.sin_port)))
    }
}

/// Sets the environment GTK and WebKit read, before anything starts a thread.
fn prepare_environment(args: &RunArgs, web_dir: &Path) -> Result<()> {
    let display = match &args.wayland_display {
        Some(d) => d.clone(),
        None => match std::env::var_os("WAYLAND_DISPLAY") {
            Some(d) => PathBuf::from(d),
            None => bail!("no display: pass --wayland-display or set WAYLAND_DISPLAY"),
        },
    };
    let runtime = web_dir.join("run");
    for dir in ["data", "cache", "config", "run"] {
        let d = web_dir.join(dir);
        std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
    }
    std::fs::set_permissions(
        &runtime,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .with_context(|| format!("making {} private", runtime.display()))?;
    let vars: [(&str, std::ffi::OsString); 12] = [
        ("GDK_BACKEND", "wayland".into()),
        ("WAYLAND_DISPLAY", display.into_os_string()),
        // Software rendering into wl_shm buffers: the compositor composites with pixman, and
        // phones without a usable GPU driver must still show apps.
        ("WEBKIT_DISABLE_DMABUF_RENDERER", "1".into()),
        ("WEBKIT_DISABLE_COMPOSITING_MODE", "1".into()),
        ("NO_AT_BRIDGE", "1".into()),
        ("GTK_A11Y", "none".into()),
        ("HOME", args.data_dir.clone().into_os_string()),
        ("XDG_DATA_HOME", web_dir.join("data").into_os_string()),
        ("XDG_CACHE_HOME", web_dir.join("cache").into_os_string()),
        ("XDG_CONFIG_HOME", web_dir.join("config").into_os_string()),
        ("XDG_RUNTIME_DIR", runtime.into_os_string()),
        ("GIO_USE_VFS", "local".into()),
    ];
    for (k, v) in vars {
        // SAFETY: called at the start of main, before any thread exists.
        unsafe { std::env::set_var(k, v) };
    }
    Ok(())
}

fn status(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Answers one `app://` request from the package, with the app's CSP.
fn serve(package: &AppPackage, csp: &str, request: &URISchemeRequest) {
    let uri = request.uri().map(|u| u.to_string()).unwrap_or_default();
    let resource = package.resolve(&uri);
    if resource.status != 200 {
        tracing::info!(app = %package.id(), %uri, status = resource.status, "refused");
    }
    let bytes = glib::Bytes::from(resource.body);
    let stream = gio::MemoryInputStream::from_bytes(&bytes);
    let response = URISchemeResponse::new(&stream, resource.body.len() as i64);
    let reason = if resource.status == 200 {
        "OK"
    } else {
        "Not Found"
    };
    response.set_status(u32::from(resource.status), Some(reason));
    response.set_content_type(resource.mime);
    let headers = soup::MessageHeaders::new(soup::MessageHeadersType::Response);
    // The headers replace the response's own: the type goes in them too.
    headers.append("Content-Type", resource.mime);
    headers.append("Content-Security-Policy", csp);
    headers.append("X-Content-Type-Options", "nosniff");
    headers.append("Cache-Control", "no-cache");
    response.set_http_headers(headers);
    request.finish_with_response(&response);
}

/// Runs the app until its window closes, the page asks to close, or SIGTERM.
pub fn run(args: RunArgs) -> Result<()> {
    let package = Rc::new(
        AppPackage::open(&args.package, &args.app_id, &args.signer)
            .with_context(|| format!("opening {}", args.app_id))?,
    );
    let id = package.id().to_owned();
    let has = |p: &str| args.permissions.iter().any(|g| g == p);
    let network = has("network");
    let csp = Rc::new(
        csp::policy(&package.raw_manifest, network)
            .with_context(|| format!("{id}: the manifest's content_security_policy"))?,
    );
    let web_dir = args.data_dir.join("web");
    prepare_environment(&args, &web_dir)?;
    let _span = tracing::info_span!("web-app", app = %id).entered();
    gtk::init().with_context(|| format!("{id}: connecting to the compositor"))?;
    glib::set_prgname(Some(id.as_str()));
    glib::set_application_name(&package.manifest.name);

    // Website data: everything under the app's own data dir.
    let data_manager = WebsiteDataManager::builder()
        .base_data_directory(web_dir.join("data").join("webkit").display().to_string())
        .base_cache_directory(web_dir.join("cache").join("webkit").display().to_string())
        .build();
    // Without the network permission every HTTP(S)/WebSocket load goes to a refused port.
    let _closed = if network {
        None
    } else {
        let (fd, port) = closed_port()?;
        let proxy = format!("http://127.0.0.1:{port}");
        let mut settings = NetworkProxySettings::new(Some(&proxy), &[]);
        data_manager.set_network_proxy_settings(NetworkProxyMode::Custom, Some(&mut settings));
        Some(fd)
    };
    let context = WebContext::with_website_data_manager(&data_manager);
    context.set_cache_model(CacheModel::DocumentViewer);
    let origin = package.origin();
    if let Some(security) = context.security_manager() {
        security.register_uri_scheme_as_secure(SCHEME);
        security.register_uri_scheme_as_cors_enabled(SCHEME);
    }
    {
        let package = package.clone();
        let csp = csp.clone();
        context.register_uri_scheme(SCHEME, move |request| serve(&package, &csp, request));
    }
    let notifications = has("notifications");
    let app_origin = SecurityOrigin::for_uri(&origin);
    let set_notification_permissions = move |ctx: &WebContext| {
        if notifications {
            ctx.initialize_notification_permissions(&[&app_origin], &[]);
        } else {
            ctx.initialize_notification_permissions(&[], &[&app_origin]);
        }
    };
    set_notification_permissions(&context);
    context
        .connect_initialize_notification_permissions(move |ctx| set_notification_permissions(ctx));

    // The JS API.
    let info = AppInfo {
        id: id.clone(),
        name: package.manifest.name.clone(),
        short_name: package.manifest.label().to_owned(),
        version: package.manifest.cirrus.version.to_string(),
        permissions: args.permissions.clone(),
        requested: package
            .manifest
            .cirrus
            .permissions
            .iter()
            .map(|p| p.as_str().to_owned())
            .collect(),
    };
    let content = UserContentManager::new();
    let own_pages = format!("{origin}/*");
    content.add_script(&UserScript::new(
        &api::user_script(&info),
        UserContentInjectedFrames::TopFrame,
        UserScriptInjectionTime::Start,
        &[own_pages.as_str()],
        &[],
    ));
    content.register_script_message_handler(api::HANDLER);

    let view = WebView::builder()
        .web_context(&context)
        .user_content_manager(&content)
        .build();
    if let Some(settings) = WebViewExt::settings(&view) {
        settings.set_enable_developer_extras(true);
        settings.set_enable_dns_prefetching(false);
        settings.set_enable_webrtc(false);
        settings.set_javascript_can_open_windows_automatically(false);
        settings.set_enable_back_forward_navigation_gestures(false);
    }

    let window = gtk::Window::new(gtk::WindowType::Toplevel);
    window.set_title(&package.manifest.name);
    // No client-side title bar: on the phone the shell's status bar and gestures are the only
    // chrome, and the page fills the app area.
    window.set_decorated(false);
    window.set_default_size(360, 640);
    window.add(&view);

    // The user's files (files.rs), with the permission.
    if let Some(root) = args
        .user_files
        .as_deref()
        .filter(|_| has(crate::files::PERMISSION))
    {
        crate::files::attach(&content, &view, root, &origin, &id);
    }
    crate::device::attach(&content, &args.build_info, &origin);
    if let Some(address) = &args.system_bus {
        crate::system::attach(&content, &view, address, &origin, &id);
    }

    // Navigation: only this app's pages; the web only with the network permission.
    {
        let origin = origin.clone();
        let id = id.clone();
        view.connect_decide_policy(move |_, decision: &PolicyDecision, kind| {
            if kind == PolicyDecisionType::Response {
                return false;
            }
            let Some(nav) = decision.downcast_ref::<NavigationPolicyDecision>() else {
                return false;
            };
            let uri = nav
                .navigation_action()
                .and_then(|a| a.request())
                .and_then(|r| r.uri())
                .map(|u| u.to_string())
                .unwrap_or_default();
            let own = uri == origin || uri.starts_with(&format!("{origin}/"));
            let web = uri.starts_with("https://") || uri.starts_with("http://");
            let allowed = own && kind == PolicyDecisionType::NavigationAction
                || (web && network && kind == PolicyDecisionType::NavigationAction)
                || uri == "about:blank";
            if allowed {
                decision.use_();
            } else {
                tracing::info!(app = %id, %uri, "navigation refused");
                decision.ignore();
            }
            true
        });
    }
    // Notifications: WebKit asks; the answer is the app's grant.
    view.connect_permission_request(move |_, request| {
        if request.is::<NotificationPermissionRequest>() {
            if notifications {
                request.allow();
            } else {
                request.deny();
            }
            return true;
        }
        request.deny();
        true
    });
    let notifier = Rc::new(Notifier::new(
        &id,
        &package.manifest.name,
        args.bus_address.clone().filter(|_| notifications),
    ));
    {
        let notifier = notifier.clone();
        view.connect_show_notification(move |_, n| {
            notifier.show(n);
            let notifier = notifier.clone();
            n.connect_closed(move |n| notifier.close(n));
            true
        });
    }

    // Messages from the page.
    {
        let view = view.clone();
        let id = id.clone();
        let origin = origin.clone();
        let granted = args.permissions.clone();
        content.connect_script_message_received(Some(api::HANDLER), move |_, result| {
            let page = view.uri().map(|u| u.to_string()).unwrap_or_default();
            if !page.starts_with(&format!("{origin}/")) {
                tracing::warn!(app = %id, %page, "message from a page outside the app dropped");
                return;
            }
            let text = result
                .js_value()
                .map(|v| v.to_str().to_string())
                .unwrap_or_default();
            match api::parse_message(&text) {
                Ok(PageMessage::Close) => gtk::main_quit(),
                Ok(PageMessage::RequestPermission { request, name }) => {
                    let answer = if granted.iter().any(|g| *g == name) {
                        "granted"
                    } else {
                        "denied"
                    };
                    view.evaluate_javascript(
                        &api::reply_call(request, &serde_json::Value::from(answer)),
                        None,
                        None,
                        None::<&gio::Cancellable>,
                        |_| {},
                    );
                }
                Err(e) => tracing::warn!(app = %id, "message from the page dropped: {e}"),
            }
        });
    }

    // First paint (first_paint.rs), crashes, closing.
    crate::first_paint::on_first_paint(&view, || status("first-frame"));
    {
        let id = id.clone();
        view.connect_web_process_terminated(move |_, reason| {
            tracing::error!(app = %id, ?reason, "the web process ended");
            gtk::main_quit();
        });
    }
    window.connect_delete_event(|_, _| {
        gtk::main_quit();
        glib::Propagation::Proceed
    });

    // Lifecycle from the manager: SIGUSR1 pause, SIGUSR2 resume, SIGTERM stop.
    for (signal, paused) in [(libc::SIGUSR1, true), (libc::SIGUSR2, false)] {
        let view = view.clone();
        glib::unix_signal_add_local(signal, move || {
            view.evaluate_javascript(
                &api::lifecycle_call(paused),
                None,
                None,
                None::<&gio::Cancellable>,
                |_| {},
            );
            glib::ControlFlow::Continue
        });
    }
    glib::unix_signal_add_local(libc::SIGTERM, || {
        gtk::main_quit();
        glib::ControlFlow::Break
    });

    let start = package.start_url();
    tracing::info!(%start, network, "loading");
    view.load_uri(&start);
    window.show_all();
    status("running");
    gtk::main();
    tracing::info!("stopped");
    Ok(())
}
