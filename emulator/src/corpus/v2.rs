//! The v2 side of the corpus: real stream lines, posts split from real search pages, and posts
//! derived from v1.1 statuses (see the parent module's docs for which is which).

use std::collections::{HashMap, HashSet};

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use super::v1::{id_str, v1_full_text, v1_time_to_rfc3339};
use super::V2Post;
use crate::rules::PostFields;

/// A v1.1 status as a v2 post object (`data` or an `includes.tweets` entry).
fn v2_tweet_of(status: &Value) -> Option<Map<String, Value>> {
    let id = id_str(status)?;
    let mut tweet = Map::new();
    tweet.insert("id".into(), json!(id));
    tweet.insert("text".into(), json!(v1_full_text(status)));
    if let Some(lang) = status["lang"].as_str() {
        tweet.insert("lang".into(), json!(lang));
    }
    if let Some(created_at) = status["created_at"].as_str().and_then(v1_time_to_rfc3339) {
        tweet.insert("created_at".into(), json!(created_at));
    }
    if let Some(author) = id_str(&status["user"]) {
        tweet.insert("author_id".into(), json!(author));
    }
    tweet.insert("edit_history_tweet_ids".into(), json!([id]));
    Some(tweet)
}

fn v2_user_of(status: &Value) -> Option<Value> {
    let user = &status["user"];
    Some(json!({
        "id": id_str(user)?,
        "name": user["name"].as_str().unwrap_or_default(),
        "username": user["screen_name"].as_str().unwrap_or_default(),
    }))
}

/// A v2 stream message derived from a v1.1 status (see the module docs).
pub(super) fn derive_v2(status: &Value) -> Option<(String, V2Post)> {
    let mut data = v2_tweet_of(status)?;
    let id = data["id"].as_str()?.to_owned();
    let mut users = Vec::new();
    users.extend(v2_user_of(status));
    let mut tweets = Vec::new();
    let mut referenced = Vec::new();
    let retweeted = &status["retweeted_status"];
    if retweeted.is_object() {
        let original = v2_tweet_of(retweeted)?;
        let author = retweeted["user"]["screen_name"]
            .as_str()
            .unwrap_or_default();
        data.insert(
            "text".into(),
            json!(format!("RT @{author}: {}", v1_full_text(retweeted))),
        );
        if !data.contains_key("lang") {
            if let Some(lang) = original.get("lang") {
                data.insert("lang".into(), lang.clone());
            }
        }
        referenced.push(json!({"type": "retweeted", "id": original["id"]}));
        tweets.push(Value::Object(original));
        users.extend(v2_user_of(retweeted));
    } else {
        if let Some(quoted_id) = status["quoted_status_id_str"].as_str() {
            referenced.push(json!({"type": "quoted", "id": quoted_id}));
            let quoted = &status["quoted_status"];
            if let Some(original) = quoted.is_object().then(|| v2_tweet_of(quoted)).flatten() {
                tweets.push(Value::Object(original));
                users.extend(v2_user_of(quoted));
            }
        }
        if let Some(reply_to) = status["in_reply_to_status_id_str"].as_str() {
            referenced.push(json!({"type": "replied_to", "id": reply_to}));
        }
    }
    if !referenced.is_empty() {
        data.insert("referenced_tweets".into(), Value::Array(referenced));
    }
    let mut unique = HashSet::new();
    users.retain(|user| unique.insert(user["id"].as_str().unwrap_or_default().to_owned()));
    let mut includes = Map::new();
    includes.insert("users".into(), Value::Array(users));
    if !tweets.is_empty() {
        includes.insert("tweets".into(), Value::Array(tweets));
    }
    let data = Value::Object(data);
    let includes = Value::Object(includes);
    let fields = v2_fields(&data, Some(&includes));
    let json = json!({"data": data, "includes": includes}).to_string();
    Some((id, V2Post { json, fields }))
}

#[derive(Deserialize)]
struct RecordedStreamLine<'a> {
    #[serde(borrow)]
    data: &'a RawValue,
    #[serde(borrow, default)]
    includes: Option<&'a RawValue>,
}

/// A real v2 stream line with its `data` and `includes` bytes kept; `None` when the line is
/// not a complete stream message (the recording's truncated last line).
pub(super) fn real_stream_post(line: &str) -> Option<(String, V2Post)> {
    let recorded: RecordedStreamLine<'_> = serde_json::from_str(line).ok()?;
    let data: Value = serde_json::from_str(recorded.data.get()).ok()?;
    let includes: Option<Value> = recorded
        .includes
        .and_then(|raw| serde_json::from_str(raw.get()).ok());
    let id = data["id"].as_str()?.to_owned();
    let json = match recorded.includes {
        Some(includes) => format!(
            "{{\"data\":{},\"includes\":{}}}",
            recorded.data.get(),
            includes.get()
        ),
        None => format!("{{\"data\":{}}}", recorded.data.get()),
    };
    let fields = v2_fields(&data, includes.as_ref());
    Some((id, V2Post { json, fields }))
}

/// One stream message per post of a search page, with the expansions that post references.
pub(super) fn split_page(page: &Value) -> Vec<(String, V2Post)> {
    let Some(posts) = page["data"].as_array() else {
        return Vec::new();
    };
    let includes = &page["includes"];
    let index = |kind: &str, key: &str| -> HashMap<String, &Value> {
        includes[kind]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|item| Some((item[key].as_str()?.to_owned(), item)))
                    .collect()
            })
            .unwrap_or_default()
    };
    let users = index("users", "id");
    let tweets = index("tweets", "id");
    let media = index("media", "media_key");
    let places = index("places", "id");
    let polls = index("polls", "id");
    let strings = |value: &Value| -> Vec<String> {
        value
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|item| item.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };

    let mut out = Vec::new();
    for post in posts.iter().filter(|post| post["text"].is_string()) {
        let Some(id) = post["id"].as_str() else {
            continue;
        };
        let referenced_tweets: Vec<&Value> = post["referenced_tweets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|reference| tweets.get(reference["id"].as_str()?).copied())
            .collect();
        let mut user_ids: Vec<String> = Vec::new();
        let mut add_user = |id: Option<&str>| {
            if let Some(id) = id {
                if users.contains_key(id) && !user_ids.iter().any(|known| known == id) {
                    user_ids.push(id.to_owned());
                }
            }
        };
        add_user(post["author_id"].as_str());
        add_user(post["in_reply_to_user_id"].as_str());
        for mention in post["entities"]["mentions"]
            .as_array()
            .into_iter()
            .flatten()
        {
            add_user(mention["id"].as_str());
        }
        for tweet in &referenced_tweets {
            add_user(tweet["author_id"].as_str());
        }
        let mut expansions = Map::new();
        let mut put = |name: &str, items: Vec<Value>| {
            if !items.is_empty() {
                expansions.insert(name.to_owned(), Value::Array(items));
            }
        };
        put(
            "users",
            user_ids
                .iter()
                .map(|id| users[id.as_str()].clone())
                .collect(),
        );
        put(
            "tweets",
            referenced_tweets.iter().map(|t| (*t).clone()).collect(),
        );
        put(
            "media",
            strings(&post["attachments"]["media_keys"])
                .iter()
                .filter_map(|key| media.get(key.as_str()).map(|m| (*m).clone()))
                .collect(),
        );
        put(
            "places",
            post["geo"]["place_id"]
                .as_str()
                .and_then(|place| places.get(place))
                .map(|place| vec![(*place).clone()])
                .unwrap_or_default(),
        );
        put(
            "polls",
            strings(&post["attachments"]["poll_ids"])
                .iter()
                .filter_map(|key| polls.get(key.as_str()).map(|p| (*p).clone()))
                .collect(),
        );
        let (message, includes) = if expansions.is_empty() {
            (json!({"data": post}), None)
        } else {
            let includes = Value::Object(expansions);
            (json!({"data": post, "includes": includes}), Some(includes))
        };
        let fields = v2_fields(post, includes.as_ref());
        out.push((
            id.to_owned(),
            V2Post {
                json: message.to_string(),
                fields,
            },
        ));
    }
    out
}

fn v2_fields(data: &Value, includes: Option<&Value>) -> PostFields {
    let has_reference = |kind: &str| {
        data["referenced_tweets"]
            .as_array()
            .is_some_and(|refs| refs.iter().any(|r| r["type"] == kind))
    };
    let author = data["author_id"].as_str().and_then(|author_id| {
        includes?["users"]
            .as_array()?
            .iter()
            .find(|user| user["id"] == author_id)?["username"]
            .as_str()
            .map(str::to_lowercase)
    });
    PostFields {
        text: data["text"].as_str().unwrap_or_default().to_lowercase(),
        langs: data["lang"]
            .as_str()
            .map(str::to_lowercase)
            .into_iter()
            .collect(),
        author,
        is_retweet: has_reference("retweeted"),
        is_reply: has_reference("replied_to"),
        is_quote: has_reference("quoted"),
        has_links: data["entities"]["urls"]
            .as_array()
            .is_some_and(|urls| !urls.is_empty()),
        has_media: data["attachments"]["media_keys"]
            .as_array()
            .is_some_and(|keys| !keys.is_empty()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retweets_are_derived_with_their_original() {
        let status = json!({
            "created_at": "Sun May 05 18:04:07 +0000 2013",
            "id": 1u64, "id_str": "1", "text": "RT @orig: short…", "lang": "en",
            "user": {"id_str": "10", "name": "Ten", "screen_name": "ten"},
            "retweeted_status": {
                "created_at": "Sun May 05 18:00:00 +0000 2013",
                "id_str": "2", "text": "short", "truncated": true,
                "extended_tweet": {"full_text": "the whole original text"},
                "user": {"id_str": "20", "name": "Orig", "screen_name": "orig"}
            }
        });
        let (id, post) = derive_v2(&status).unwrap();
        assert_eq!(id, "1");
        let message: Value = serde_json::from_str(&post.json).unwrap();
        assert_eq!(message["data"]["text"], "RT @orig: the whole original text");
        assert_eq!(
            message["data"]["referenced_tweets"],
            json!([{"type": "retweeted", "id": "2"}])
        );
        assert_eq!(message["data"]["edit_history_tweet_ids"], json!(["1"]));
        assert_eq!(message["data"]["created_at"], "2013-05-05T18:04:07.000Z");
        assert_eq!(message["includes"]["tweets"][0]["id"], "2");
        assert_eq!(
            message["includes"]["users"],
            json!([{"id": "10", "name": "Ten", "username": "ten"},
                   {"id": "20", "name": "Orig", "username": "orig"}])
        );
        assert!(post.fields.is_retweet);
        assert_eq!(post.fields.author.as_deref(), Some("ten"));
    }

    #[test]
    fn replies_and_quotes_reference_their_targets() {
        let status = json!({
            "id_str": "5", "text": "hi", "in_reply_to_status_id_str": "4",
            "quoted_status_id_str": "3",
            "user": {"id_str": "10", "name": "Ten", "screen_name": "ten"}
        });
        let (_, post) = derive_v2(&status).unwrap();
        let message: Value = serde_json::from_str(&post.json).unwrap();
        assert_eq!(
            message["data"]["referenced_tweets"],
            json!([{"type": "quoted", "id": "3"}, {"type": "replied_to", "id": "4"}])
        );
        assert!(post.fields.is_reply && post.fields.is_quote && !post.fields.is_retweet);
    }

    #[test]
    fn pages_split_with_only_referenced_expansions() {
        let page = json!({
            "data": [
                {"id": "1", "text": "a", "author_id": "u1",
                 "referenced_tweets": [{"type": "quoted", "id": "9"}]},
                {"id": "2", "text": "b", "author_id": "u2"}
            ],
            "includes": {
                "users": [{"id": "u1", "username": "one"}, {"id": "u2", "username": "two"},
                          {"id": "u9", "username": "nine"}],
                "tweets": [{"id": "9", "text": "quoted", "author_id": "u9"}]
            }
        });
        let posts = split_page(&page);
        assert_eq!(posts.len(), 2);
        let first: Value = serde_json::from_str(&posts[0].1.json).unwrap();
        assert_eq!(
            first["includes"]["users"],
            json!([{"id": "u1", "username": "one"}, {"id": "u9", "username": "nine"}])
        );
        assert_eq!(first["includes"]["tweets"][0]["id"], "9");
        let second: Value = serde_json::from_str(&posts[1].1.json).unwrap();
        assert_eq!(
            second["includes"],
            json!({"users": [{"id": "u2", "username": "two"}]})
        );
        assert_eq!(posts[1].1.fields.author.as_deref(), Some("two"));
    }

    #[test]
    fn real_stream_lines_keep_their_bytes_and_drop_twarc() {
        let line = r#"{"data": {"id": "7", "text": "Hi"}, "includes": {"users": []}, "matching_rules": [{"id": 1, "tag": null}], "__twarc": {"url": "x"}}"#;
        let (id, post) = real_stream_post(line).unwrap();
        assert_eq!(id, "7");
        assert_eq!(
            post.json,
            r#"{"data":{"id": "7", "text": "Hi"},"includes":{"users": []}}"#
        );
        assert!(real_stream_post(r#"{"data": {"author_id": "1021"#).is_none());
    }
}
