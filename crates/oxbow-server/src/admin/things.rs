//! Things and thing types, as the AWS IoT registry keeps them: a thing is a device (its name is
//! what `${credentials-iot:ThingName}` becomes), a thing type a kind of device things share.

use std::collections::BTreeMap;

use oxbow_catalog::{CatalogError, ThingRecord, ThingTypeRecord};
use oxbow_core::ids::request_id as uuid;
use oxbow_core::time::{ms_to_json_seconds, now_ms};
use oxbow_core::validate as v;
use oxbow_core::{ApiError, ErrorKind};
use serde_json::{json, Value};

use super::{all, exists, find, not_found, storage, Args};
use crate::state::AppState;

/// IoT's limits on attributes: three on a thing without a type, fifty with one.
const MAX_UNTYPED_ATTRIBUTES: usize = 3;
const MAX_TYPED_ATTRIBUTES: usize = 50;

fn type_json(t: &ThingTypeRecord) -> Value {
    json!({"ThingTypeName": t.name, "ThingTypeArn": t.arn, "ThingTypeId": t.id,
           "ThingTypeDescription": t.description, "SearchableAttributes": t.searchable_attributes,
           "CreationDate": ms_to_json_seconds(t.created_ms)})
}

fn thing_json(t: &ThingRecord) -> Value {
    json!({"ThingName": t.name, "ThingArn": t.arn, "ThingId": t.unique_id(),
           "ThingTypeName": t.thing_type, "Attributes": t.attributes, "Version": t.version})
}

fn catalog_error(what: &'static str, name: String) -> impl FnOnce(CatalogError) -> ApiError {
    move |e| match e {
        CatalogError::Exists => exists(what, &name),
        CatalogError::NotFound => not_found(what, &name),
        e => storage(e),
    }
}

/// `ThingTypeName`, optional `ThingTypeDescription` and `SearchableAttributes`.
pub async fn create_thing_type(state: &AppState, a: &Args) -> Result<Value, ApiError> {
    let name = a.req("ThingTypeName", &v::THING_NAME)?;
    let description = a.opt("ThingTypeDescription", &v::THING_TYPE_DESCRIPTION)?;
    let record = ThingTypeRecord {
        arn: state.iot_arn("thingtype", &name),
        id: uuid(),
        name: name.clone(),
        created_ms: now_ms(),
        description,
        searchable_attributes: a.list("SearchableAttributes").unwrap_or_default(),
    };
    state
        .catalog
        .thing_types()
        .insert(record.clone(), u64::MAX)
        .await
        .map_err(catalog_error("thing type", name))?;
    Ok(json!({ "ThingType": type_json(&record) }))
}

pub async fn get_thing_type(state: &AppState, a: &Args) -> Result<Value, ApiError> {
    let name = a.req("ThingTypeName", &v::THING_NAME)?;
    let t = find(state.catalog.thing_types(), &name, "thing type").await?;
    Ok(json!({ "ThingType": type_json(&t) }))
}

pub async fn list_thing_types(state: &AppState) -> Result<Value, ApiError> {
    let all = all(state.catalog.thing_types()).await?;
    Ok(json!({ "ThingTypes": all.iter().map(type_json).collect::<Vec<_>>() }))
}

/// Refused while a thing still has the type, as IoT refuses it.
pub async fn delete_thing_type(state: &AppState, a: &Args) -> Result<Value, ApiError> {
    let name = a.req("ThingTypeName", &v::THING_NAME)?;
    find(state.catalog.thing_types(), &name, "thing type").await?;
    if let Some(thing) = all(state.catalog.things())
        .await?
        .into_iter()
        .find(|t| t.thing_type.as_deref() == Some(&name))
    {
        return Err(ApiError::invalid_argument(format!(
            "Can not delete thing type {name} with things associated with it (for example {}).",
            thing.name
        )));
    }
    state
        .catalog
        .thing_types()
        .remove(&name)
        .await
        .map_err(storage)?;
    Ok(json!({}))
}

/// The thing type `a` names, which must exist.
async fn existing_type(state: &AppState, a: &Args) -> Result<Option<String>, ApiError> {
    let Some(name) = a.opt("ThingTypeName", &v::THING_NAME)? else {
        return Ok(None);
    };
    find(state.catalog.thing_types(), &name, "thing type").await?;
    Ok(Some(name))
}

/// `Attributes`, an object of names to string values, checked against IoT's rules.
fn attributes(a: &Args) -> Result<BTreeMap<String, String>, ApiError> {
    let mut out = BTreeMap::new();
    let Some(map) = a.object("Attributes") else {
        return Ok(out);
    };
    for (name, value) in map {
        let value = value.as_str().ok_or_else(|| {
            ApiError::invalid_argument(format!("Attribute {name} must have a string value."))
        })?;
        oxbow_core::validate::Checks::new()
            .string("attributeName", Some(name), &v::THING_ATTRIBUTE_NAME)
            .string("attributeValue", Some(value), &v::THING_ATTRIBUTE_VALUE)
            .finish()?;
        out.insert(name.clone(), value.to_string());
    }
    Ok(out)
}

fn check_attribute_count(thing: &ThingRecord) -> Result<(), ApiError> {
    let max = if thing.thing_type.is_some() {
        MAX_TYPED_ATTRIBUTES
    } else {
        MAX_UNTYPED_ATTRIBUTES
    };
    if thing.attributes.len() > max {
        return Err(ApiError::invalid_argument(format!(
            "A thing {} may have at most {max} attributes.",
            if thing.thing_type.is_some() {
                "with a thing type"
            } else {
                "without a thing type"
            }
        )));
    }
    Ok(())
}

/// `ThingName`, optional `ThingTypeName` (which must exist) and `Attributes`.
pub async fn create_thing(state: &AppState, a: &Args) -> Result<Value, ApiError> {
    let name = a.req("ThingName", &v::THING_NAME)?;
    let record = ThingRecord {
        arn: state.iot_arn("thing", &name),
        name: name.clone(),
        created_ms: now_ms(),
        attributes: attributes(a)?,
        thing_type: existing_type(state, a).await?,
        thing_id: uuid(),
        version: 1,
    };
    check_attribute_count(&record)?;
    state
        .catalog
        .things()
        .insert(record.clone(), u64::MAX)
        .await
        .map_err(catalog_error("thing", name))?;
    Ok(json!({ "Thing": thing_json(&record) }))
}

pub async fn get_thing(state: &AppState, a: &Args) -> Result<Value, ApiError> {
    let name = a.req("ThingName", &v::THING_NAME)?;
    let t = find(state.catalog.things(), &name, "thing").await?;
    Ok(json!({ "Thing": thing_json(&t) }))
}

pub async fn list_things(state: &AppState, a: &Args) -> Result<Value, ApiError> {
    let of_type = a.opt("ThingTypeName", &v::THING_NAME)?;
    let attribute = a.opt("AttributeName", &v::THING_ATTRIBUTE_NAME)?;
    let value = a.opt("AttributeValue", &v::THING_ATTRIBUTE_VALUE)?;
    let things: Vec<Value> = all(state.catalog.things())
        .await?
        .iter()
        .filter(|t| of_type.is_none() || t.thing_type == of_type)
        .filter(|t| match (&attribute, &value) {
            (Some(k), Some(v)) => t.attributes.get(k) == Some(v),
            (Some(k), None) => t.attributes.contains_key(k),
            _ => true,
        })
        .map(thing_json)
        .collect();
    Ok(json!({ "Things": things }))
}

/// The version `ExpectedVersion` names must be the thing's, when given.
fn check_version(a: &Args, thing: &ThingRecord) -> Result<(), ApiError> {
    let expected = a.int("ExpectedVersion", thing.version, 0, i64::MAX)?;
    if expected != thing.version {
        return Err(ApiError::new(
            ErrorKind::VersionMismatch,
            format!(
                "The version of thing {} is {}, not the expected {expected}.",
                thing.name, thing.version
            ),
        ));
    }
    Ok(())
}

/// `ThingTypeName` or `RemoveThingType`, `Attributes` (merged with `Merge`, where an empty
/// value removes an attribute, or replacing them), and `ExpectedVersion`.
pub async fn update_thing(state: &AppState, a: &Args) -> Result<Value, ApiError> {
    let name = a.req("ThingName", &v::THING_NAME)?;
    let new_type = existing_type(state, a).await?;
    let remove_type = a.flag("RemoveThingType");
    if remove_type && new_type.is_some() {
        return Err(ApiError::invalid_argument(
            "Give either ThingTypeName or RemoveThingType, not both.",
        ));
    }
    let given = a.object("Attributes").is_some();
    let attributes = attributes(a)?;
    let merge = a.flag("Merge");
    let current = find(state.catalog.things(), &name, "thing").await?;
    check_version(a, &current)?;
    let mut updated = current.clone();
    if remove_type {
        updated.thing_type = None;
    } else if new_type.is_some() {
        updated.thing_type = new_type;
    }
    if given {
        if !merge {
            updated.attributes.clear();
        }
        for (k, v) in attributes {
            if v.is_empty() && merge {
                updated.attributes.remove(&k);
            } else {
                updated.attributes.insert(k, v);
            }
        }
    }
    updated.version += 1;
    check_attribute_count(&updated)?;
    let version = current.version;
    state
        .catalog
        .things()
        .update(
            &name,
            Box::new(move |t: &mut ThingRecord| {
                if t.version != version {
                    return Err("the thing's version changed".into());
                }
                *t = updated;
                Ok(())
            }),
        )
        .await
        .map_err(|e| match e {
            CatalogError::Rejected(_) => ApiError::new(
                ErrorKind::VersionMismatch,
                "The thing was changed by another request; read it again.",
            ),
            e => catalog_error("thing", name)(e),
        })?;
    Ok(json!({}))
}

/// Deleting a thing detaches it from every certificate; `ExpectedVersion` as in UpdateThing.
pub async fn delete_thing(state: &AppState, a: &Args) -> Result<Value, ApiError> {
    let name = a.req("ThingName", &v::THING_NAME)?;
    let c = &state.catalog;
    let thing = find(c.things(), &name, "thing").await?;
    check_version(a, &thing)?;
    for cert in all(c.certificates()).await? {
        if cert.things.contains(&name) {
            super::iot::set_thing(state, &cert.id, &name, false).await?;
        }
    }
    c.things().remove(&name).await.map_err(storage)?;
    Ok(json!({}))
}
