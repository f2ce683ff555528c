//! The tray as the desktop shell sees it, over D-Bus: a fake
//! `org.kde.StatusNotifierWatcher` that the app's tray item (libayatana-appindicator,
//! through tray-icon) registers with, and a [`TrayItem`] view that reads the item's
//! `org.kde.StatusNotifierItem` properties, decodes its icon, and drives its
//! `com.canonical.dbusmenu` menu like a user clicking in it.
//!
//! Xvfb has no system tray: this is the only way to see the tray in a test.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::sync::watch;
use zbus::fdo::PropertiesProxy;
use zbus::names::InterfaceName;
use zbus::object_server::SignalEmitter;
use zbus::proxy::CacheProperties;
use zbus::{Connection, interface};
use zbus::{OwnedObjectPath, OwnedVariant, Variant};

/// The watcher's well-known name.
pub const WATCHER_NAME: &str = "org.kde.StatusNotifierWatcher";
/// The watcher's object path.
pub const WATCHER_PATH: &str = "/StatusNotifierWatcher";
/// The item interface.
pub const ITEM_INTERFACE: &str = "org.kde.StatusNotifierItem";
/// The menu interface.
pub const MENU_INTERFACE: &str = "com.canonical.dbusmenu";
/// The path a KDE-style item (registered by bus name) serves at.
const DEFAULT_ITEM_PATH: &str = "/StatusNotifierItem";
/// How long one D-Bus call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How often property polls ask again.
const POLL: Duration = Duration::from_millis(50);

/// A registered item: who registered, and where its object lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The caller's unique bus name (from the message header).
    pub sender: String,
    /// The bus name to talk to (the sender, or the name it passed).
    pub bus_name: String,
    /// The item's object path.
    pub path: String,
    /// The `service` argument as passed.
    pub service: String,
}

struct Watcher {
    items: watch::Sender<Vec<Registration>>,
}

#[interface(name = "org.kde.StatusNotifierWatcher")]
impl Watcher {
    async fn register_status_notifier_item(
        &self,
        service: String,
        #[zbus(header)] header: zbus::message::Header<'_>,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> zbus::fdo::Result<()> {
        let sender = header
            .sender()
            .map(|name| name.to_string())
            .unwrap_or_default();
        // libayatana passes its object path; KDE-style items pass a bus name.
        let (bus_name, path) = if service.starts_with('/') {
            (sender.clone(), service.clone())
        } else {
            (service.clone(), DEFAULT_ITEM_PATH.to_owned())
        };
        let registration = Registration {
            sender,
            bus_name: bus_name.clone(),
            path: path.clone(),
            service,
        };
        self.items.send_modify(|items| items.push(registration));
        Self::status_notifier_item_registered(&emitter, &format!("{bus_name}{path}")).await?;
        Ok(())
    }

    fn register_status_notifier_host(&self, _service: String) {}

    #[zbus(property)]
    fn registered_status_notifier_items(&self) -> Vec<String> {
        self.items
            .borrow()
            .iter()
            .map(|item| format!("{}{}", item.bus_name, item.path))
            .collect()
    }

    #[zbus(property)]
    fn is_status_notifier_host_registered(&self) -> bool {
        true
    }

    #[zbus(property)]
    fn protocol_version(&self) -> i32 {
        0
    }

    #[zbus(signal)]
    async fn status_notifier_item_registered(
        emitter: &SignalEmitter<'_>,
        service: &str,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn status_notifier_item_unregistered(
        emitter: &SignalEmitter<'_>,
        service: &str,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn status_notifier_host_registered(emitter: &SignalEmitter<'_>) -> zbus::Result<()>;
}

/// A running fake watcher.
pub struct StatusNotifierWatcher {
    /// Its own connection (owns [`WATCHER_NAME`]); also used to read items.
    connection: Connection,
    /// Every registration so far.
    items: watch::Receiver<Vec<Registration>>,
}

impl StatusNotifierWatcher {
    /// Serves on the bus at `address`.
    pub async fn start(address: &str) -> Result<StatusNotifierWatcher> {
        let (items_tx, items) = watch::channel(Vec::new());
        let connection = zbus::connection::Builder::address(address)
            .serve_at(WATCHER_PATH, Watcher { items: items_tx })
            .name(WATCHER_NAME)
            .build()
            .await
            .with_context(|| format!("cannot own {WATCHER_NAME} on {address}"))?;
        Ok(StatusNotifierWatcher { connection, items })
    }

    /// Every registration so far.
    pub fn registrations(&self) -> Vec<Registration> {
        self.items.borrow().clone()
    }

    /// The latest item registered by a process other than those already seen in
    /// `after` registrations, waiting up to `timeout`.
    pub async fn wait_item_after(&self, after: usize, timeout: Duration) -> Result<TrayItem> {
        let mut items = self.items.clone();
        let waited = tokio::time::timeout(timeout, items.wait_for(|items| items.len() > after))
            .await
            .with_context(|| {
                format!("no tray item registered with the StatusNotifierWatcher within {timeout:?}")
            })?
            .context("the watcher stopped")?
            .last()
            .cloned()
            .context("a registration")?;
        Ok(TrayItem {
            connection: self.connection.clone(),
            registration: waited,
        })
    }

    /// The first item registered (now or later), waiting up to `timeout`.
    pub async fn wait_item(&self, timeout: Duration) -> Result<TrayItem> {
        self.wait_item_after(0, timeout).await
    }

    /// A connection to the bus (the watcher's own), for reading other objects.
    pub fn connection(&self) -> &Connection {
        &self.connection
    }
}

/// An RGBA image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pixels {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height * 4` bytes, row by row.
    pub rgba: Vec<u8>,
}

impl Pixels {
    /// The RGBA value at (x, y).
    pub fn at(&self, x: u32, y: u32) -> [u8; 4] {
        let index = ((y * self.width + x) * 4) as usize;
        let mut pixel = [0u8; 4];
        pixel.copy_from_slice(&self.rgba[index..index + 4]);
        pixel
    }

    /// How many pixels differ from `other` (all of them when the sizes differ).
    pub fn differing_pixels(&self, other: &Pixels) -> usize {
        if (self.width, self.height) != (other.width, other.height) {
            return (self.width * self.height).max(other.width * other.height) as usize;
        }
        self.rgba
            .chunks(4)
            .zip(other.rgba.chunks(4))
            .filter(|(a, b)| a != b)
            .count()
    }

    /// The mean of each channel over the visible (alpha > 0) pixels.
    pub fn mean_visible_rgb(&self) -> [f64; 3] {
        let mut sum = [0f64; 3];
        let mut count = 0f64;
        for pixel in self.rgba.chunks(4) {
            if pixel[3] > 0 {
                for (channel, total) in sum.iter_mut().enumerate() {
                    *total += f64::from(pixel[channel]);
                }
                count += 1.0;
            }
        }
        if count > 0.0 {
            sum.map(|total| total / count)
        } else {
            sum
        }
    }
}

/// Decodes a PNG file into RGBA pixels.
pub fn decode_png(path: &Path) -> Result<Pixels> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(
        png::Transformations::EXPAND | png::Transformations::STRIP_16 | png::Transformations::ALPHA,
    );
    let mut reader = decoder
        .read_info()
        .with_context(|| format!("{} is not a PNG", path.display()))?;
    let size = reader
        .output_buffer_size()
        .context("the PNG is too large to decode")?;
    let mut buffer = vec![0; size];
    let info = reader
        .next_frame(&mut buffer)
        .with_context(|| format!("cannot decode {}", path.display()))?;
    buffer.truncate(info.buffer_size());
    let rgba = match info.color_type {
        png::ColorType::Rgba => buffer,
        png::ColorType::GrayscaleAlpha => buffer
            .chunks(2)
            .flat_map(|ga| [ga[0], ga[0], ga[0], ga[1]])
            .collect(),
        png::ColorType::Rgb => buffer
            .chunks(3)
            .flat_map(|rgb| [rgb[0], rgb[1], rgb[2], 255])
            .collect(),
        png::ColorType::Grayscale => buffer.iter().flat_map(|g| [*g, *g, *g, 255]).collect(),
        other => bail!("{}: unexpected colour type {other:?}", path.display()),
    };
    Ok(Pixels {
        width: info.width,
        height: info.height,
        rgba,
    })
}

/// A menu entry from `GetLayout`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuItem {
    /// The dbusmenu id (what `Event` names).
    pub id: i32,
    /// The label with `_` mnemonics removed (`__` becomes `_`).
    pub label: String,
    /// `enabled` (default true).
    pub enabled: bool,
    /// `visible` (default true).
    pub visible: bool,
    /// `type` is `separator`.
    pub separator: bool,
    /// Sub-items (a submenu).
    pub children: Vec<MenuItem>,
}

impl MenuItem {
    /// This item and every descendant, depth first.
    pub fn flatten(&self) -> Vec<&MenuItem> {
        let mut out = vec![self];
        for child in &self.children {
            out.extend(child.flatten());
        }
        out
    }

    /// The first descendant (or self) whose label is `label`.
    pub fn find(&self, label: &str) -> Option<&MenuItem> {
        self.flatten().into_iter().find(|item| item.label == label)
    }
}

/// The menu's labels, top level then nested, separators left out (for messages).
pub fn labels(items: &[MenuItem]) -> Vec<String> {
    items
        .iter()
        .flat_map(MenuItem::flatten)
        .filter(|item| !item.separator)
        .map(|item| item.label.clone())
        .collect()
}

/// The tray item registered by the app.
#[derive(Clone)]
pub struct TrayItem {
    /// A connection to the bus.
    connection: Connection,
    /// Where the item lives.
    registration: Registration,
}

impl TrayItem {
    /// Who registered it and where.
    pub fn registration(&self) -> &Registration {
        &self.registration
    }

    async fn properties(&self, path: &str) -> Result<PropertiesProxy<'static>> {
        PropertiesProxy::builder(&self.connection)
            .destination(self.registration.bus_name.clone())
            .path(path.to_owned())
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .context("a properties proxy")
    }

    /// Reads one `org.kde.StatusNotifierItem` property, fresh from the app.
    pub async fn property(&self, name: &str) -> Result<OwnedVariant> {
        let proxy = self.properties(&self.registration.path).await?;
        let interface = InterfaceName::from_static_str(ITEM_INTERFACE).context("interface")?;
        tokio::time::timeout(CALL_TIMEOUT, proxy.get(interface, name))
            .await
            .with_context(|| format!("reading {name} took over {CALL_TIMEOUT:?}"))?
            .with_context(|| format!("cannot read the tray item's {name}"))
    }

    /// Reads a string property.
    pub async fn string(&self, name: &str) -> Result<String> {
        let value = self.property(name).await?;
        match &*value {
            Variant::Str(text) => Ok(text.as_str().to_owned()),
            Variant::ObjectPath(path) => Ok(path.as_str().to_owned()),
            other => bail!("the tray item's {name} is not a string: {other:?}"),
        }
    }

    /// `Status` (`Active`, `Passive`, `NeedsAttention`).
    pub async fn status(&self) -> Result<String> {
        self.string("Status").await
    }

    /// `Title`.
    pub async fn title(&self) -> Result<String> {
        self.string("Title").await
    }

    /// `IconName`.
    pub async fn icon_name(&self) -> Result<String> {
        self.string("IconName").await
    }

    /// `XAyatanaLabel` (what tray-icon's `set_title` sets on Linux).
    pub async fn label(&self) -> Result<String> {
        self.string("XAyatanaLabel").await
    }

    /// `Menu`, the dbusmenu object path.
    pub async fn menu_path(&self) -> Result<String> {
        let value = self.property("Menu").await?;
        let path = OwnedObjectPath::try_from(value).context("Menu is an object path")?;
        Ok(path.as_str().to_owned())
    }

    /// The PNG file behind `IconName`: a path, or a name looked up in `IconThemePath`.
    pub async fn icon_file(&self) -> Result<PathBuf> {
        let name = self.icon_name().await?;
        let direct = PathBuf::from(&name);
        if direct.is_absolute() && direct.is_file() {
            return Ok(direct);
        }
        let theme = self.string("IconThemePath").await.unwrap_or_default();
        let mut candidates = Vec::new();
        if !theme.is_empty() {
            let dir = PathBuf::from(&theme);
            candidates.push(dir.join(format!("{name}.png")));
            candidates.push(dir.join(&name));
            for sub in [
                "hicolor/scalable/apps",
                "hicolor/48x48/apps",
                "hicolor/32x32/apps",
            ] {
                candidates.push(dir.join(sub).join(format!("{name}.png")));
            }
        }
        candidates
            .iter()
            .find(|path| path.is_file())
            .cloned()
            .with_context(|| {
                format!("IconName {name:?} (IconThemePath {theme:?}) names no file; tried {candidates:?}")
            })
    }

    /// The current icon's pixels.
    pub async fn icon_pixels(&self) -> Result<Pixels> {
        let file = self.icon_file().await?;
        decode_png(&file)
    }

    /// Polls `read` until `accept` holds for its value, up to `timeout`; `what`
    /// names the wait in the error, with the last value seen.
    pub async fn wait_property<T: std::fmt::Debug>(
        &self,
        what: &str,
        timeout: Duration,
        mut read: impl AsyncFnMut(&TrayItem) -> Result<T>,
        accept: impl Fn(&T) -> bool,
    ) -> Result<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let last = read(self).await;
            if let Ok(value) = &last
                && accept(value)
            {
                return last;
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("{what}: still not true after {timeout:?}; last value: {last:?}");
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until `XAyatanaLabel` equals `expected`.
    pub async fn wait_label(&self, expected: &str, timeout: Duration) -> Result<()> {
        self.wait_property(
            &format!("tray label {expected:?}"),
            timeout,
            async |item| item.label().await,
            |label| label == expected,
        )
        .await
        .map(|_| ())
    }

    /// Waits until the icon's pixels are not `previous` any more, returning the new
    /// ones.
    pub async fn wait_icon_change(&self, previous: &Pixels, timeout: Duration) -> Result<Pixels> {
        self.wait_property(
            "a new tray icon",
            timeout,
            async |item| item.icon_pixels().await,
            |pixels| pixels != previous,
        )
        .await
    }

    /// The menu, as `GetLayout(0, -1, [])` returns it: the root's children.
    pub async fn menu(&self) -> Result<Vec<MenuItem>> {
        let path = self.menu_path().await?;
        let reply = tokio::time::timeout(
            CALL_TIMEOUT,
            self.connection.call_method(
                Some(self.registration.bus_name.as_str()),
                path.as_str(),
                Some(MENU_INTERFACE),
                "GetLayout",
                &(0i32, -1i32, Vec::<String>::new()),
            ),
        )
        .await
        .with_context(|| format!("GetLayout took over {CALL_TIMEOUT:?}"))?
        .context("GetLayout failed")?;
        let body = reply.body();
        let (_revision, root): (u32, RawLayout) = body
            .deserialize()
            .context("GetLayout's reply is (u, (ia{sv}av))")?;
        root.children
            .iter()
            .map(|child| parse_layout(child))
            .collect()
    }

    /// Every menu label (see [`labels`]).
    pub async fn menu_labels(&self) -> Result<Vec<String>> {
        Ok(labels(&self.menu().await?))
    }

    /// Clicks menu item `id`: `Event(id, "clicked", <i 0>, 0)`.
    pub async fn click(&self, id: i32) -> Result<()> {
        let path = self.menu_path().await?;
        tokio::time::timeout(
            CALL_TIMEOUT,
            self.connection.call_method(
                Some(self.registration.bus_name.as_str()),
                path.as_str(),
                Some(MENU_INTERFACE),
                "Event",
                &(id, "clicked", Variant::I32(0), 0u32),
            ),
        )
        .await
        .with_context(|| format!("Event(clicked) took over {CALL_TIMEOUT:?}"))?
        .with_context(|| format!("clicking menu item {id} failed"))?;
        Ok(())
    }

    /// Finds the item labelled `label` (anywhere in the menu) and clicks it.
    pub async fn click_label(&self, label: &str) -> Result<()> {
        let menu = self.menu().await?;
        let item = menu
            .iter()
            .find_map(|item| item.find(label))
            .with_context(|| {
                format!(
                    "no menu item labelled {label:?}; the menu has {:?}",
                    labels(&menu)
                )
            })?;
        if !item.enabled {
            bail!("menu item {label:?} is disabled");
        }
        self.click(item.id).await
    }
}

/// The root of a `GetLayout` reply: `(ia{sv}av)`, children as variants.
#[derive(serde::Deserialize, zbus::Type)]
struct RawLayout {
    /// The root's id (0).
    _id: i32,
    /// The root's properties (none that matter).
    _properties: HashMap<String, OwnedVariant>,
    /// The top-level items.
    children: Vec<OwnedVariant>,
}

/// Parses one `(ia{sv}av)` layout node.
fn parse_layout(value: &Variant<'_>) -> Result<MenuItem> {
    let value = match value {
        Variant::Variant(inner) => inner.as_ref(),
        other => other,
    };
    let Variant::Structure(node) = value else {
        bail!("a menu layout node is not a structure: {value:?}");
    };
    let fields = node.fields();
    let [id, properties, children] = fields else {
        bail!("a menu layout node has {} fields, not 3", fields.len());
    };
    let Variant::I32(id) = id else {
        bail!("a menu item id is not an i32: {id:?}");
    };
    let properties: HashMap<String, OwnedVariant> = HashMap::try_from(
        properties
            .try_clone()
            .context("the properties can be copied")?,
    )
    .context("menu item properties are a{sv}")?;
    let text = |key: &str| -> Option<String> {
        properties.get(key).and_then(|value| match &**value {
            Variant::Str(text) => Some(text.as_str().to_owned()),
            _ => None,
        })
    };
    let flag = |key: &str| -> bool {
        properties
            .get(key)
            .and_then(|value| match &**value {
                Variant::Bool(flag) => Some(*flag),
                _ => None,
            })
            .unwrap_or(true)
    };
    let Variant::Array(children) = children else {
        bail!("menu item {id}'s children are not an array");
    };
    let children = children
        .iter()
        .map(parse_layout)
        .collect::<Result<Vec<_>>>()?;
    Ok(MenuItem {
        id: *id,
        label: strip_mnemonics(&text("label").unwrap_or_default()),
        enabled: flag("enabled"),
        visible: flag("visible"),
        separator: text("type").as_deref() == Some("separator"),
        children,
    })
}

/// Removes GTK mnemonic underscores: `_Quit` → `Quit`, `a__b` → `a_b`.
pub fn strip_mnemonics(label: &str) -> String {
    let mut out = String::with_capacity(label.len());
    let mut chars = label.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '_' {
            if chars.peek() == Some(&'_') {
                out.push('_');
                chars.next();
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mnemonics_are_stripped() {
        assert_eq!(strip_mnemonics("_Quit"), "Quit");
        assert_eq!(strip_mnemonics("Open _Tocsin"), "Open Tocsin");
        assert_eq!(strip_mnemonics("a__b"), "a_b");
        assert_eq!(strip_mnemonics("Préférences…"), "Préférences…");
    }
}
