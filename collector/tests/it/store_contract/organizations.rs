//! Organizations and their tree, enrollment by secret and machine, and the users with
//! their sessions and API tokens.

use super::{DAY, T0, enrollment, organization, secret};
use sverka_collector::keys;
use sverka_collector::store::{
    NewOrganization, NewSession, NewUser, Role, Store, StoreError, UserChange,
};

pub async fn organizations_form_a_tree(store: &dyn Store) {
    let region = organization(store, "Ставропольский край", None, 0).await;
    let town = organization(store, "Город", Some(region), 2).await;
    let school = organization(store, "Школа №1", Some(town), 30).await;
    let all = store.organizations().await.expect("list");
    assert_eq!(all.len(), 3);
    let stored = store
        .organization(school)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(stored.parent_id, Some(town));
    assert_eq!(stored.name, "Школа №1");
    assert_eq!(stored.expected_pcs, 30);
    let missing_parent = store
        .create_organization(NewOrganization {
            parent_id: Some(9_999),
            name: "x".into(),
            kind: "school".into(),
            expected_pcs: 0,
            time_zone: None,
        })
        .await;
    assert!(matches!(missing_parent, Err(StoreError::NotFound(_))));
    let unnamed = store
        .create_organization(NewOrganization {
            parent_id: None,
            name: "  ".into(),
            kind: "school".into(),
            expected_pcs: 0,
            time_zone: None,
        })
        .await;
    assert!(matches!(unnamed, Err(StoreError::Invalid(_))));
    assert_eq!(store.organization(9_999).await.expect("get"), None);

    // Time zones: set on creation or later, cleared by an empty name, checked.
    let zoned = store
        .create_organization(NewOrganization {
            parent_id: Some(region),
            name: "Самара".into(),
            kind: "municipality".into(),
            expected_pcs: 0,
            time_zone: Some("Europe/Samara".into()),
        })
        .await
        .expect("zoned");
    assert_eq!(zoned.time_zone.as_deref(), Some("Europe/Samara"));
    assert_eq!(
        store.organization(zoned.id).await.expect("get"),
        Some(zoned.clone())
    );
    let bad_zone = store
        .create_organization(NewOrganization {
            parent_id: None,
            name: "Марс".into(),
            kind: "school".into(),
            expected_pcs: 0,
            time_zone: Some("Mars/Olympus".into()),
        })
        .await;
    assert!(matches!(bad_zone, Err(StoreError::Invalid(_))));
    let moved = store
        .set_organization_time_zone(town, Some("Asia/Yekaterinburg"))
        .await
        .expect("set");
    assert_eq!(moved.time_zone.as_deref(), Some("Asia/Yekaterinburg"));
    assert!(matches!(
        store
            .set_organization_time_zone(town, Some("Nowhere"))
            .await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store
            .set_organization_time_zone(9_999, Some("Europe/Moscow"))
            .await,
        Err(StoreError::NotFound(_))
    ));
    let cleared = store
        .set_organization_time_zone(zoned.id, None)
        .await
        .expect("clear");
    assert_eq!(cleared.time_zone, None);
    assert_eq!(
        store
            .organization(town)
            .await
            .expect("get")
            .and_then(|town| town.time_zone),
        Some("Asia/Yekaterinburg".into())
    );
}

pub async fn enrollment_follows_the_secret_and_the_machine(store: &dyn Store) {
    let school_a = organization(store, "A", None, 10).await;
    let school_b = organization(store, "B", None, 10).await;
    let secret_a = secret(store, school_a, None).await;
    let secret_b = secret(store, school_b, None).await;

    let first = store
        .enroll(enrollment(&secret_a, "machine-1"), T0)
        .await
        .expect("enroll");
    assert_eq!(first.organization.id, school_a);
    assert!(!first.re_enrolled);
    let key_before = store
        .host_credentials(first.host_id)
        .await
        .expect("credentials")
        .expect("host")
        .key_hash;

    // A reinstalled agent: same machine, same host, a new key.
    let again = store
        .enroll(enrollment(&secret_a, "machine-1"), T0 + 10)
        .await
        .expect("re-enroll");
    assert_eq!(again.host_id, first.host_id);
    assert!(again.re_enrolled);
    let credentials = store
        .host_credentials(first.host_id)
        .await
        .expect("credentials")
        .expect("host");
    assert_ne!(credentials.key_hash, key_before);
    assert_eq!(credentials.machine_id, "machine-1");
    assert_eq!(credentials.organization_id, school_a);

    // The secret decides the organization: school B's secret never touches A's host.
    let in_b = store
        .enroll(enrollment(&secret_b, "machine-1"), T0)
        .await
        .expect("enroll in B");
    assert_ne!(in_b.host_id, first.host_id);
    assert_eq!(in_b.organization.id, school_b);
    let a_after = store
        .host_credentials(first.host_id)
        .await
        .expect("credentials")
        .expect("host");
    assert_eq!(a_after.key_hash, credentials.key_hash);

    // A wrong secret, a revoked one, an expired one.
    let mut forged = enrollment(&secret_a, "machine-2");
    forged.secret_hash = keys::hash("0".repeat(64).as_str());
    assert!(matches!(
        store.enroll(forged, T0).await,
        Err(StoreError::Rejected(_))
    ));
    store
        .revoke_secret(secret_a.0, T0 + 20)
        .await
        .expect("revoke");
    assert!(matches!(
        store.enroll(enrollment(&secret_a, "machine-3"), T0 + 30).await,
        Err(StoreError::Rejected(message)) if message.contains("revoked")
    ));
    let expiring = secret(store, school_a, Some(T0 + 100)).await;
    assert!(
        store
            .enroll(enrollment(&expiring, "machine-4"), T0 + 99)
            .await
            .is_ok()
    );
    assert!(matches!(
        store.enroll(enrollment(&expiring, "machine-5"), T0 + 100).await,
        Err(StoreError::Rejected(message)) if message.contains("expired")
    ));
    let listed = store.secrets(school_a).await.expect("secrets");
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].revoked_at, Some(T0 + 20));
    assert!(matches!(
        store.revoke_secret(9_999, T0).await,
        Err(StoreError::NotFound(_))
    ));
}

fn new_user(login: &str, role: Role, organization_id: Option<i64>) -> NewUser {
    NewUser {
        login: login.into(),
        password_hash: format!("hash-of-{login}"),
        role,
        organization_id,
        language: "ru".into(),
    }
}

pub async fn users_sessions_and_tokens(store: &dyn Store) {
    let region = organization(store, "Region", None, 0).await;
    let admin = store
        .create_user(new_user("Admin", Role::Administrator, None), T0)
        .await
        .expect("admin");
    assert_eq!(admin.organization_id, None);
    let officer = store
        .create_user(new_user("officer", Role::Officer, Some(region)), T0)
        .await
        .expect("officer");
    // Logins are unique without regard to case; officers need an organization.
    assert!(matches!(
        store
            .create_user(new_user("ADMIN", Role::Administrator, None), T0)
            .await,
        Err(StoreError::Rejected(_))
    ));
    assert!(matches!(
        store
            .create_user(new_user("lost", Role::SchoolAdmin, None), T0)
            .await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store
            .create_user(new_user("nowhere", Role::Officer, Some(9_999)), T0)
            .await,
        Err(StoreError::NotFound(_))
    ));
    let credentials = store
        .user_credentials("ADMIN")
        .await
        .expect("lookup")
        .expect("found");
    assert_eq!(credentials.user, admin);
    assert_eq!(credentials.password_hash, "hash-of-Admin");
    assert!(
        store
            .user_credentials("nobody")
            .await
            .expect("lookup")
            .is_none()
    );
    assert_eq!(
        store.user(officer.id).await.expect("user"),
        Some(officer.clone())
    );
    assert_eq!(store.users().await.expect("users").len(), 2);

    // Sessions: found by hash until they expire, the user is disabled or changes password.
    let session = |hash: &str, expires_at| NewSession {
        token_hash: hash.into(),
        user_id: officer.id,
        csrf_token: format!("csrf-{hash}"),
        created_at: T0,
        expires_at,
    };
    store
        .create_session(session("s1", T0 + DAY))
        .await
        .expect("s1");
    store
        .create_session(session("s2", T0 + 10))
        .await
        .expect("s2");
    let found = store
        .session("s1", T0 + 5)
        .await
        .expect("s1")
        .expect("live");
    assert_eq!(
        (found.user.id, found.csrf_token.as_str()),
        (officer.id, "csrf-s1")
    );
    assert!(
        store.session("s2", T0 + 10).await.expect("s2").is_none(),
        "expired"
    );
    assert!(store.session("s3", T0).await.expect("s3").is_none());
    store.delete_session("s1").await.expect("logout");
    assert!(store.session("s1", T0 + 5).await.expect("s1").is_none());
    store
        .create_session(session("s4", T0 + DAY))
        .await
        .expect("s4");
    store
        .update_user(
            officer.id,
            UserChange {
                language: Some("en".into()),
                ..UserChange::default()
            },
            T0,
        )
        .await
        .expect("language");
    let found = store.session("s4", T0).await.expect("s4").expect("kept");
    assert_eq!(found.user.language, "en");
    store
        .update_user(
            officer.id,
            UserChange {
                password_hash: Some("new".into()),
                ..UserChange::default()
            },
            T0,
        )
        .await
        .expect("password");
    assert!(
        store.session("s4", T0).await.expect("s4").is_none(),
        "ended"
    );
    assert_eq!(
        store
            .user_credentials("officer")
            .await
            .expect("c")
            .expect("u")
            .password_hash,
        "new"
    );

    // API tokens act as their user until revoked or the user is disabled.
    let token = store
        .create_api_token(officer.id, "reports", "token-hash", T0)
        .await
        .expect("token");
    let presented = store
        .api_token(token.id)
        .await
        .expect("token")
        .expect("live");
    assert_eq!(presented.user.id, officer.id);
    assert_eq!(presented.token_hash, "token-hash");
    assert!(
        matches!(
            store.revoke_api_token(admin.id, token.id, T0).await,
            Err(StoreError::NotFound(_))
        ),
        "another user's token"
    );
    store
        .create_session(session("s5", T0 + DAY))
        .await
        .expect("s5");
    store
        .update_user(
            officer.id,
            UserChange {
                disabled: Some(true),
                ..UserChange::default()
            },
            T0 + 1,
        )
        .await
        .expect("disable");
    assert!(
        store.api_token(token.id).await.expect("token").is_none(),
        "disabled"
    );
    assert!(store.session("s5", T0).await.expect("s5").is_none());
    assert_eq!(
        store
            .user(officer.id)
            .await
            .expect("u")
            .expect("u")
            .disabled_at,
        Some(T0 + 1)
    );
    store
        .update_user(
            officer.id,
            UserChange {
                disabled: Some(false),
                ..UserChange::default()
            },
            T0 + 2,
        )
        .await
        .expect("enable");
    assert!(store.api_token(token.id).await.expect("token").is_some());
    store
        .revoke_api_token(officer.id, token.id, T0 + 3)
        .await
        .expect("revoke");
    assert!(
        store.api_token(token.id).await.expect("token").is_none(),
        "revoked"
    );
    let listed = store.api_tokens(officer.id).await.expect("tokens");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].revoked_at, Some(T0 + 3));
    assert!(matches!(
        store.update_user(9_999, UserChange::default(), T0).await,
        Err(StoreError::NotFound(_))
    ));
}
