module longhorn-bi/tools/celcost

go 1.19

// The versions Kubernetes 1.30 builds with (k8s.io/apiserver go.mod at kubernetes-1.30.0:
// cel-go v0.17.8) and cel-go v0.17.8's own requirements. deps.sh vendors them from local
// mirrors; no module proxy is needed.
require (
	github.com/antlr/antlr4/runtime/Go/antlr/v4 v4.0.0-20230305170008-8188dc5388df
	github.com/google/cel-go v0.17.8
	github.com/stoewer/go-strcase v1.2.0
	golang.org/x/exp v0.0.0-20220722155223-a9213eeb770e
	golang.org/x/text v0.8.0
	google.golang.org/genproto/googleapis/api v0.0.0-20230525234035-dd9d682886f9
	google.golang.org/genproto/googleapis/rpc v0.0.0-20230525234030-28d5490b6b19
	google.golang.org/protobuf v1.30.0
)
