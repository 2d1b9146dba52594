//! The world the isolation part builds: a region, two municipalities, four schools
//! with reporting PCs, and a user (with a session and an API token) of every role; its
//! ids read back from the collector's database, and what each role may see.

use anyhow::{Context, bail};
use std::collections::{BTreeMap, BTreeSet};

use super::web::{self, Session};
use crate::real_collector::Collector;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Administrator,
    OfficerA,
    SchoolAdminA1,
}

/// The world the part builds; ids read back from the collector.
pub struct World {
    /// Organization id → (name, parent).
    pub organizations: BTreeMap<i64, (String, Option<i64>)>,
    /// Host id → (host name, organization).
    pub hosts: BTreeMap<i64, (String, i64)>,
    /// Secret id → organization.
    pub secrets: BTreeMap<i64, i64>,
    /// User id → (login, organization).
    pub users: BTreeMap<i64, (String, Option<i64>)>,
    /// Token id → user id.
    pub tokens: BTreeMap<i64, i64>,
    pub roles: Vec<RoleUser>,
}

pub struct RoleUser {
    pub role: Role,
    pub login: String,
    pub user_id: i64,
    pub home: Option<i64>,
    pub session: Session,
    pub token: String,
    pub csrf: String,
}

impl World {
    fn within(&self, id: i64, home: i64) -> bool {
        let mut current = Some(id);
        while let Some(at) = current {
            if at == home {
                return true;
            }
            current = self.organizations.get(&at).and_then(|(_, parent)| *parent);
        }
        false
    }

    fn ancestors(&self, id: i64) -> BTreeSet<i64> {
        let mut found = BTreeSet::new();
        let mut current = Some(id);
        while let Some(at) = current {
            found.insert(at);
            current = self.organizations.get(&at).and_then(|(_, parent)| *parent);
        }
        found
    }

    pub fn org_in_scope(&self, home: Option<i64>, id: i64) -> bool {
        match home {
            None => self.organizations.contains_key(&id),
            Some(home) => self.within(id, home),
        }
    }

    /// Names that must never reach this user: organizations outside its subtree (but
    /// its own organization's ancestors), their PCs, and users of other organizations.
    pub fn foreign_markers(&self, user: &RoleUser) -> Vec<String> {
        let Some(home) = user.home else {
            return Vec::new();
        };
        let context = self.ancestors(home);
        let mut markers = Vec::new();
        for (id, (name, _)) in &self.organizations {
            if !self.within(*id, home) && !context.contains(id) {
                markers.push(name.clone());
            }
        }
        for (name, organization) in self.hosts.values() {
            if !self.within(*organization, home) {
                markers.push(name.clone());
            }
        }
        for (login, organization) in self.users.values() {
            if organization.is_none_or(|organization| !self.within(organization, home)) {
                markers.push(login.clone());
            }
        }
        markers
    }
}

pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Administrator => "administrator",
        Role::OfficerA => "officer of municipality A",
        Role::SchoolAdminA1 => "school admin of school A1",
    }
}

pub fn build_world(collector: &Collector, tag: &str) -> anyhow::Result<World> {
    let region = collector.add_org(&format!("region-{tag}"), "region", None);
    let mut schools = Vec::new();
    for municipality in ["A", "B"] {
        let id = collector.add_org(
            &format!("muni-{municipality}-{tag}"),
            "municipality",
            Some(region),
        );
        for school in 1..=2 {
            let name = format!("school-{municipality}{school}-{tag}");
            schools.push((
                collector.add_org(&name, "school", Some(id)),
                format!("{municipality}{school}"),
            ));
        }
    }
    let http = web::http_client();
    let base = collector.url();
    for (school, label) in &schools {
        let secret = collector.secret(*school);
        for pc in 1..=2 {
            let hostname = format!("pc-{label}-{pc}-{tag}");
            let host = web::enroll(
                &http,
                &base,
                &secret,
                &format!("machine-{label}-{pc}-{tag}"),
                &hostname,
            )?;
            let inventory = [web::package(
                "telegram-desktop",
                "4.6.5",
                "/var/lib/dpkg/status",
                None,
            )];
            let (status, text) = web::send_report(
                &http,
                &base,
                &host.key,
                web::report_body(&hostname, "proof", &inventory, vec![]),
            )?;
            if status != 200 {
                bail!("a report of {hostname} was refused: {status} {text}");
            }
        }
    }
    let password = web::password_file()?;
    let muni_a = schools[0].0;
    let muni_a = read_parent(collector, muni_a)?;
    let school_a1 = schools[0].0;
    let specs = [
        (Role::Administrator, "administrator", None),
        (Role::OfficerA, "officer", Some(muni_a)),
        (Role::SchoolAdminA1, "school_admin", Some(school_a1)),
    ];
    let mut roles = Vec::new();
    for (_, role_text, home) in specs {
        let login = format!("{}-{tag}", role_text.replace('_', "-"));
        web::add_user(collector, &password, &login, role_text, home)?;
    }
    for (role, role_text, home) in specs {
        let login = format!("{}-{tag}", role_text.replace('_', "-"));
        let mut session = Session::login(&base, &login)?;
        let token = session.create_token(&format!("token-of-{login}"))?;
        let csrf = session.csrf()?;
        roles.push(RoleUser {
            role,
            login,
            user_id: 0,
            home,
            session,
            token,
            csrf,
        });
    }
    let mut world = read_world(collector)?;
    for user in &mut roles {
        user.user_id = world
            .users
            .iter()
            .find(|(_, (login, _))| *login == user.login)
            .map(|(id, _)| *id)
            .context("a suite user in the database")?;
    }
    world.roles = roles;
    Ok(world)
}

fn read_parent(collector: &Collector, id: i64) -> anyhow::Result<i64> {
    let connection = rusqlite::Connection::open(collector.database())?;
    Ok(connection.query_row(
        "SELECT parent_id FROM organizations WHERE id = ?1",
        [id],
        |row| row.get(0),
    )?)
}

/// Every id the collector holds, read from its database.
fn read_world(collector: &Collector) -> anyhow::Result<World> {
    let connection =
        rusqlite::Connection::open(collector.database()).context("open the database")?;
    let organizations = connection
        .prepare("SELECT id, name, parent_id FROM organizations")?
        .query_map([], |row| Ok((row.get(0)?, (row.get(1)?, row.get(2)?))))?
        .collect::<Result<_, _>>()?;
    let hosts = connection
        .prepare("SELECT id, hostname, organization_id FROM hosts")?
        .query_map([], |row| Ok((row.get(0)?, (row.get(1)?, row.get(2)?))))?
        .collect::<Result<_, _>>()?;
    let secrets = connection
        .prepare("SELECT id, organization_id FROM enrollment_secrets")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let users = connection
        .prepare("SELECT id, login, organization_id FROM users")?
        .query_map([], |row| Ok((row.get(0)?, (row.get(1)?, row.get(2)?))))?
        .collect::<Result<_, _>>()?;
    let tokens = connection
        .prepare("SELECT id, user_id FROM api_tokens")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(World {
        organizations,
        hosts,
        secrets,
        users,
        tokens,
        roles: Vec::new(),
    })
}
