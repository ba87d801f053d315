//! `GetFlows` with each response decoded straight into its own heap allocation.
//!
//! The generated client decodes a response (864 bytes) on the stack and moves it through
//! every layer between the decoder and the pipeline: several copies per message. Decoded
//! into a `Box`, only a pointer moves. Requests are encoded and errors mapped exactly as the
//! generated client does (a message that does not decode is `INTERNAL`).

use prost::Message as _;
use tonic::Status;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic::transport::Channel;
use tonic_prost::ProstEncoder;

use crate::api::observer::{GetFlowsRequest, GetFlowsResponse};

/// The method's path.
const GET_FLOWS: &str = "/observer.Observer/GetFlows";

/// Opens the `GetFlows` stream on `channel`; messages larger than `max_message_size` fail
/// the stream.
pub(super) async fn get_flows(
    channel: Channel,
    max_message_size: usize,
    request: GetFlowsRequest,
) -> Result<tonic::Streaming<Box<GetFlowsResponse>>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel).max_decoding_message_size(max_message_size);
    grpc.ready()
        .await
        .map_err(|e| Status::unknown(format!("service was not ready: {e}")))?;
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(GET_FLOWS);
    let mut request = tonic::Request::new(request);
    request
        .extensions_mut()
        .insert(tonic::GrpcMethod::new("observer.Observer", "GetFlows"));
    let response = grpc.server_streaming(request, path, BoxedCodec).await?;
    Ok(response.into_inner())
}

/// Encodes the request with prost, decodes each response into a `Box`.
#[derive(Clone, Copy, Debug, Default)]
struct BoxedCodec;

impl Codec for BoxedCodec {
    type Encode = GetFlowsRequest;
    type Decode = Box<GetFlowsResponse>;
    type Encoder = ProstEncoder<GetFlowsRequest>;
    type Decoder = BoxedDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::new(BufferSettings::default())
    }

    fn decoder(&mut self) -> Self::Decoder {
        BoxedDecoder
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct BoxedDecoder;

impl Decoder for BoxedDecoder {
    type Item = Box<GetFlowsResponse>;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Status> {
        let mut msg = Box::<GetFlowsResponse>::default();
        msg.merge(buf)
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Some(msg))
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::default()
    }
}
