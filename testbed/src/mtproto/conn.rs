//! One client connection: full-transport framing, MTProto 2.0 messages
//! (sessions, msg_ids, seq_nos, containers, gzip, acks, pings, salts) and
//! the hand-off of API requests to a per-connection worker.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use grammers_crypto::DequeBuffer;
use grammers_mtproto::transport::{self, Transport};
use grammers_tl_types::{self as tl, Cursor, Deserializable, Identifiable, Serializable};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::inflate::gunzip;
use super::rpc::{self, Reply};
use super::Shared;

/// Something to send to the client.
pub(crate) enum Out {
    /// The answer to request `req_msg_id` (a serialized object or rpc_error).
    Result { req_msg_id: i64, body: Vec<u8> },
    /// A pushed `Updates`.
    Push(Vec<u8>),
    /// Close the connection without a word (the link is down).
    Close,
}

const RPC_RESULT: u32 = 0xf35c6d01;
const MSG_CONTAINER: u32 = 0x73f1f8dc;
const GZIP_PACKED: u32 = 0x3072cfa1;

/// Aborts a task when dropped, so a connection's worker dies with it.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A message for the client before encryption.
struct Outgoing {
    body: Vec<u8>,
    content_related: bool,
    /// Responses get msg_id ≡ 1 (mod 4), other server messages ≡ 3.
    response: bool,
}

struct Conn {
    shared: Arc<Shared>,
    transport: transport::Full,
    /// The client's session id, once its first message arrived.
    session_id: Option<i64>,
    /// Content-related messages sent (for seq_no).
    sent_content: i32,
    last_msg_id: i64,
    requests: mpsc::UnboundedSender<(i64, Vec<u8>)>,
}

/// Why a connection ends abruptly.
enum Fatal {
    /// The client used a key we do not know: answer transport error -404.
    UnknownKey,
    Garbage,
}

pub(crate) async fn serve(
    shared: Arc<Shared>,
    stream: TcpStream,
    out_tx: mpsc::UnboundedSender<Out>,
    mut out_rx: mpsc::UnboundedReceiver<Out>,
) {
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let (req_tx, req_rx) = mpsc::unbounded_channel();
    let _worker = AbortOnDrop(tokio::spawn(worker(shared.clone(), req_rx, out_tx)));
    let mut conn = Conn {
        shared,
        transport: transport::Full::new(),
        session_id: None,
        sent_content: 0,
        last_msg_id: 0,
        requests: req_tx,
    };
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        tokio::select! {
            n = rd.read(&mut chunk) => {
                let n = match n {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                buf.extend_from_slice(&chunk[..n]);
                let mut replies = Vec::new();
                let mut fatal = None;
                loop {
                    match conn.transport.unpack(&mut buf[..]) {
                        Ok(offset) => {
                            let payload = buf[offset.data_range].to_vec();
                            buf.drain(..offset.next_offset);
                            if let Err(e) = conn.on_packet(&payload, &mut replies) {
                                fatal = Some(e);
                                break;
                            }
                        }
                        Err(transport::Error::MissingBytes) => break,
                        Err(_) => {
                            fatal = Some(Fatal::Garbage);
                            break;
                        }
                    }
                }
                let mut bytes = Vec::new();
                for out in replies {
                    bytes.extend(conn.encode(out));
                }
                if let Some(Fatal::UnknownKey) = fatal {
                    bytes.extend_from_slice(&(-404i32).to_le_bytes());
                }
                if !bytes.is_empty() && wr.write_all(&bytes).await.is_err() {
                    break;
                }
                if fatal.is_some() {
                    break;
                }
            }
            out = out_rx.recv() => {
                let outgoing = match out {
                    None | Some(Out::Close) => break,
                    Some(Out::Result { req_msg_id, body }) => {
                        let mut wrapped = Vec::with_capacity(body.len() + 12);
                        RPC_RESULT.serialize(&mut wrapped);
                        req_msg_id.serialize(&mut wrapped);
                        wrapped.extend_from_slice(&body);
                        Outgoing { body: wrapped, content_related: true, response: true }
                    }
                    Some(Out::Push(body)) => {
                        if conn.session_id.is_none() {
                            continue; // no session yet; getDifference will tell
                        }
                        Outgoing { body, content_related: true, response: false }
                    }
                };
                let bytes = conn.encode(outgoing);
                if wr.write_all(&bytes).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = wr.shutdown().await;
}

/// Runs the connection's API requests one after another, in arrival order.
async fn worker(
    shared: Arc<Shared>,
    mut requests: mpsc::UnboundedReceiver<(i64, Vec<u8>)>,
    out: mpsc::UnboundedSender<Out>,
) {
    while let Some((req_msg_id, body)) = requests.recv().await {
        let outcome = rpc::call(&shared, body).await;
        shared.note_call(outcome.method, &outcome.reply);
        let sent = match outcome.reply {
            Reply::Ok(body) => out.send(Out::Result { req_msg_id, body }),
            Reply::Err(error_code, error_message) => out.send(Out::Result {
                req_msg_id,
                body: tl::enums::RpcError::Error(tl::types::RpcError { error_code, error_message }).to_bytes(),
            }),
            Reply::Drop => out.send(Out::Close),
        };
        drop(outcome.hold);
        if sent.is_err() {
            break;
        }
    }
}

fn now_secs() -> i32 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i32)
}

impl Conn {
    fn next_msg_id(&mut self, response: bool) -> i64 {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let low = if response { 1 } else { 3 };
        let mut id = (((now.as_secs() << 32) | ((now.subsec_nanos() as u64) << 2)) as i64 & !3) | low;
        if id <= self.last_msg_id {
            id = ((self.last_msg_id & !3) + 4) | low;
        }
        self.last_msg_id = id;
        id
    }

    /// Encrypts and frames one message.
    fn encode(&mut self, out: Outgoing) -> Vec<u8> {
        let msg_id = self.next_msg_id(out.response);
        let seq_no = if out.content_related {
            self.sent_content += 1;
            self.sent_content * 2 - 1
        } else {
            self.sent_content * 2
        };
        let mut plain = Vec::with_capacity(32 + out.body.len());
        self.shared.salt.serialize(&mut plain);
        self.session_id.unwrap_or_default().serialize(&mut plain);
        msg_id.serialize(&mut plain);
        seq_no.serialize(&mut plain);
        (out.body.len() as i32).serialize(&mut plain);
        plain.extend_from_slice(&out.body);
        let packet = self.shared.key.encrypt_to_client(&plain);
        let mut framed = DequeBuffer::with_capacity(packet.len() + 4, 8);
        framed.extend(packet.iter().copied());
        self.transport.pack(&mut framed);
        framed[..].to_vec()
    }

    fn on_packet(&mut self, payload: &[u8], replies: &mut Vec<Outgoing>) -> Result<(), Fatal> {
        if payload.len() >= 8 && payload[..8] == [0u8; 8] {
            // A plain message: the client wants a new key (DH). Not offered.
            return Err(Fatal::UnknownKey);
        }
        let plain = match self.shared.key.decrypt_from_client(payload) {
            Ok(p) => p,
            Err(super::crypto::CryptoError::UnknownKey) => return Err(Fatal::UnknownKey),
            Err(_) => return Err(Fatal::Garbage),
        };
        let mut cur = Cursor::from_slice(&plain);
        let header = (|| -> tl::deserialize::Result<_> {
            let _salt = i64::deserialize(&mut cur)?;
            let session_id = i64::deserialize(&mut cur)?;
            let msg_id = i64::deserialize(&mut cur)?;
            let _seq_no = i32::deserialize(&mut cur)?;
            let len = i32::deserialize(&mut cur)?;
            Ok((session_id, msg_id, len))
        })();
        let Ok((session_id, msg_id, len)) = header else { return Err(Fatal::Garbage) };
        let Some(body) = usize::try_from(len).ok().and_then(|len| plain.get(32..32 + len)) else {
            return Err(Fatal::Garbage);
        };
        if self.session_id != Some(session_id) {
            // A new session (grammers starts one per connection).
            self.session_id = Some(session_id);
            self.sent_content = 0;
            let created = tl::enums::NewSession::Created(tl::types::NewSessionCreated {
                first_msg_id: msg_id,
                unique_id: fastrand::i64(..),
                server_salt: self.shared.salt,
            });
            replies.push(Outgoing { body: created.to_bytes(), content_related: true, response: false });
        }
        self.on_message(msg_id, body, replies, 0)
    }

    fn on_message(&mut self, msg_id: i64, body: &[u8], replies: &mut Vec<Outgoing>, depth: u8) -> Result<(), Fatal> {
        if depth > 2 {
            return Err(Fatal::Garbage);
        }
        let Some(id) = body.get(..4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])) else {
            return Err(Fatal::Garbage);
        };
        let mut cur = Cursor::from_slice(&body[4..]);
        match id {
            MSG_CONTAINER => {
                let parse = |cur: &mut Cursor<'_>| -> tl::deserialize::Result<Vec<(i64, Vec<u8>)>> {
                    let count = i32::deserialize(cur)?;
                    let mut inner = Vec::new();
                    for _ in 0..count.clamp(0, 1024) {
                        let msg_id = i64::deserialize(cur)?;
                        let _seq_no = i32::deserialize(cur)?;
                        let len = i32::deserialize(cur)?.max(0) as usize;
                        let mut body = vec![0u8; len];
                        cur.read_exact(&mut body)?;
                        inner.push((msg_id, body));
                    }
                    Ok(inner)
                };
                for (inner_id, inner_body) in parse(&mut cur).map_err(|_| Fatal::Garbage)? {
                    self.on_message(inner_id, &inner_body, replies, depth + 1)?;
                }
            }
            GZIP_PACKED => {
                let packed = Vec::<u8>::deserialize(&mut cur).map_err(|_| Fatal::Garbage)?;
                let unpacked = gunzip(&packed).ok_or(Fatal::Garbage)?;
                self.on_message(msg_id, &unpacked, replies, depth + 1)?;
            }
            tl::types::MsgsAck::CONSTRUCTOR_ID
            | tl::types::HttpWait::CONSTRUCTOR_ID
            | tl::types::MsgsStateReq::CONSTRUCTOR_ID
            | tl::types::MsgResendReq::CONSTRUCTOR_ID => {}
            tl::functions::Ping::CONSTRUCTOR_ID | tl::functions::PingDelayDisconnect::CONSTRUCTOR_ID => {
                let ping_id = i64::deserialize(&mut cur).map_err(|_| Fatal::Garbage)?;
                let pong = tl::enums::Pong::Pong(tl::types::Pong { msg_id, ping_id });
                replies.push(Outgoing { body: pong.to_bytes(), content_related: true, response: true });
            }
            tl::functions::GetFutureSalts::CONSTRUCTOR_ID => {
                let num = i32::deserialize(&mut cur).map_err(|_| Fatal::Garbage)?.clamp(1, 64);
                let now = now_secs();
                // Overlapping hour-long salts from a minute ago on; all the
                // same value (any salt is accepted anyway).
                let salts = (0..num)
                    .map(|i| tl::types::FutureSalt {
                        valid_since: now - 60 + i * 1800,
                        valid_until: now - 60 + i * 1800 + 3600,
                        salt: self.shared.salt,
                    })
                    .collect();
                let answer = tl::enums::FutureSalts::Salts(tl::types::FutureSalts {
                    req_msg_id: msg_id,
                    now,
                    salts: tl::RawVec(salts),
                });
                replies.push(Outgoing { body: answer.to_bytes(), content_related: false, response: true });
            }
            tl::functions::DestroySession::CONSTRUCTOR_ID => {
                let session_id = i64::deserialize(&mut cur).map_err(|_| Fatal::Garbage)?;
                let answer =
                    tl::enums::DestroySessionRes::DestroySessionNone(tl::types::DestroySessionNone { session_id });
                replies.push(Outgoing { body: answer.to_bytes(), content_related: false, response: true });
            }
            _ => {
                let _ = self.requests.send((msg_id, body.to_vec()));
            }
        }
        Ok(())
    }
}
