//! Tauri's build step, with the app's own commands declared so that capabilities can
//! allow them per window (only the panel window may call them).

fn main() {
    let manifest = tauri_build::AppManifest::new().commands(&[
        "snapshot",
        "list_items",
        "list_deadlines",
        "acknowledge",
        "rotate_calendar_feed",
        "revoke_calendar_feed",
        "mark_read",
        "mark_all_read",
        "respond_proposal",
        "open_link",
        "sign_in",
        "sign_out",
        "get_preferences",
        "set_preferences",
        "pause",
        "hide_panel",
        "take_navigation",
    ]);
    tauri_build::try_build(tauri_build::Attributes::new().app_manifest(manifest))
        .expect("tauri build step");
}
