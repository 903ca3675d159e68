// Command celcost measures what the API server charges for each CEL expression of the
// policies `kubectl longhorn-bi policy -o json` prints, on the largest objects Longhorn's
// CRDs let through, with the cel-go release Kubernetes 1.30 builds with (v0.17.8).
//
// What Kubernetes 1.30 enforces for a ValidatingAdmissionPolicy (k8s.io/apiserver at
// kubernetes-1.30.0):
//   - no static cost estimate: pkg/admission/plugin/cel/compile.go compiles with `object`
//     and `oldObject` as dyn and never calls EstimateCost;
//   - per expression, at run time, cel.CostLimit(PerCallLimit = 1,000,000)
//     (pkg/cel/environment/base.go, pkg/apis/cel/config.go);
//   - per policy and request, RuntimeCELCostBudget = 10,000,000 shared by its validations
//     and messageExpressions (pkg/admission/plugin/policy/validating/validator.go), and
//     RuntimeCELCostBudgetMatchConditions = 2,500,000 for its matchConditions;
//   - run-time cost is cel-go's CostTracker with no Kubernetes call estimator
//     (no cel.CostTracking option anywhere in the apiserver), so library and extension
//     calls (url, isURL, trim, split, ...) cost 1, and standard ones by size
//     (interpreter/runtimecost.go: matches, ==, +, in, endsWith).
//
// The environment below is the one a 1.30 API server compiles new expressions in
// (DefaultCompatibilityVersion 1.29): our own declarations of the options base.go lists,
// and of the URL functions of pkg/cel/library/urls.go (Go's net/url, as there).
//
// Usage: tools/celcost/deps.sh once, then from tools/celcost:
//
//	kubectl longhorn-bi policy --longhorn-version 1.12 -o json | GOFLAGS=-mod=vendor go run .
package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"sort"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/checker"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/ext"
	"github.com/google/cel-go/interpreter"
)

const (
	perCallLimit          = 1000000  // celconfig.PerCallLimit
	runtimeBudget         = 10000000 // celconfig.RuntimeCELCostBudget
	matchConditionsBudget = 2500000  // celconfig.RuntimeCELCostBudgetMatchConditions
	maxRequestBytes       = 3 << 20  // apiextensions' maxRequestSizeBytes (3 MiB)
)

var urlType = cel.OpaqueType("kubernetes.URL")

// urlValue stands for pkg/cel/url.go's URL: an opaque value holding a parsed *url.URL.
type urlValue struct{ *url.URL }

func (u urlValue) ConvertToNative(reflect.Type) (any, error) { return u.URL, nil }
func (u urlValue) ConvertToType(t ref.Type) ref.Val          { return types.NewErr("no conversion") }
func (u urlValue) Equal(other ref.Val) ref.Val {
	o, ok := other.(urlValue)
	return types.Bool(ok && o.String() == u.String())
}
func (u urlValue) Type() ref.Type { return urlType }
func (u urlValue) Value() any     { return u.URL }

func stringToURL(arg ref.Val) ref.Val {
	s, ok := arg.Value().(string)
	if !ok {
		return types.MaybeNoSuchOverloadErr(arg)
	}
	if _, err := url.ParseRequestURI(s); err != nil {
		return types.NewErr("URL parse error during conversion from string: %v", err)
	}
	u, err := url.Parse(s)
	if err != nil {
		return types.NewErr("URL parse error during conversion from string: %v", err)
	}
	return urlValue{u}
}

func urlGetter(get func(*url.URL) string) func(ref.Val) ref.Val {
	return func(arg ref.Val) ref.Val {
		u, ok := arg.(urlValue)
		if !ok {
			return types.MaybeNoSuchOverloadErr(arg)
		}
		return types.String(get(u.URL))
	}
}

func urlLibrary() cel.EnvOption {
	return cel.Lib(urlLib{})
}

type urlLib struct{}

func (urlLib) CompileOptions() []cel.EnvOption {
	getter := func(name string, get func(*url.URL) string) cel.EnvOption {
		return cel.Function(name, cel.MemberOverload("url_"+name, []*cel.Type{urlType},
			cel.StringType, cel.UnaryBinding(urlGetter(get))))
	}
	return []cel.EnvOption{
		cel.Function("url", cel.Overload("string_to_url", []*cel.Type{cel.StringType}, urlType,
			cel.UnaryBinding(stringToURL))),
		cel.Function("isURL", cel.Overload("is_url_string", []*cel.Type{cel.StringType},
			cel.BoolType, cel.UnaryBinding(func(arg ref.Val) ref.Val {
				s, ok := arg.Value().(string)
				if !ok {
					return types.MaybeNoSuchOverloadErr(arg)
				}
				_, err := url.ParseRequestURI(s)
				return types.Bool(err == nil)
			}))),
		getter("getScheme", func(u *url.URL) string { return u.Scheme }),
		getter("getHost", func(u *url.URL) string { return u.Host }),
		getter("getHostname", func(u *url.URL) string { return u.Hostname() }),
		getter("getPort", func(u *url.URL) string { return u.Port() }),
		getter("getEscapedPath", func(u *url.URL) string { return u.EscapedPath() }),
	}
}

func (urlLib) ProgramOptions() []cel.ProgramOption { return nil }

func newEnv() (*cel.Env, error) {
	return cel.NewEnv(
		cel.HomogeneousAggregateLiterals(),
		cel.EagerlyValidateDeclarations(true),
		cel.DefaultUTCTimeZone(true),
		urlLibrary(),
		cel.CostEstimatorOptions(checker.PresenceTestHasCost(false)),
		cel.CrossTypeNumericComparisons(true),
		cel.OptionalTypes(),
		cel.ASTValidators(
			cel.ValidateDurationLiterals(),
			cel.ValidateTimestampLiterals(),
			cel.ValidateRegexLiterals(),
			cel.ValidateHomogeneousAggregateLiterals(),
		),
		ext.Strings(ext.StringsVersion(2)),
		ext.Sets(),
		cel.Variable("object", cel.DynType),
		cel.Variable("oldObject", cel.DynType),
		cel.Variable("request", cel.DynType),
	)
}

type policyDoc struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		MatchConditions []struct {
			Name       string `json:"name"`
			Expression string `json:"expression"`
		} `json:"matchConditions"`
		Validations []struct {
			Expression        string `json:"expression"`
			MessageExpression string `json:"messageExpression"`
			Message           string `json:"message"`
		} `json:"validations"`
	} `json:"spec"`
}

type expression struct {
	policy, label, role, text string
	program                   cel.Program
}

type result struct {
	max      uint64
	worst    string
	exceeded string
}

var ruleLabel = regexp.MustCompile(`^\[(LHB\d+)\] ([^:]*):`)

func compile(env *cel.Env, policy, label, role, text string) expression {
	ast, iss := env.Compile(text)
	if iss.Err() != nil {
		fmt.Fprintf(os.Stderr, "%s %s %s does not compile: %v\n", policy, label, role, iss.Err())
		os.Exit(1)
	}
	program, err := env.Program(ast,
		cel.EvalOptions(cel.OptOptimize, cel.OptTrackCost),
		cel.CostLimit(perCallLimit),
		cel.CostTrackerOptions(interpreter.PresenceTestHasCost(false)),
	)
	if err != nil {
		panic(err)
	}
	return expression{policy, label, role, text, program}
}

func main() {
	var list struct {
		Items []policyDoc `json:"items"`
	}
	if err := json.NewDecoder(os.Stdin).Decode(&list); err != nil {
		panic(err)
	}
	env, err := newEnv()
	if err != nil {
		panic(err)
	}
	var validations, conditions []expression
	for _, doc := range list.Items {
		if doc.Kind != "ValidatingAdmissionPolicy" {
			continue
		}
		for _, c := range doc.Spec.MatchConditions {
			conditions = append(conditions, compile(env, doc.Metadata.Name, c.Name, "matchCondition", c.Expression))
		}
		for i, v := range doc.Spec.Validations {
			label := fmt.Sprintf("#%d", i)
			if m := ruleLabel.FindStringSubmatch(v.Message); m != nil {
				label = fmt.Sprintf("%s %s #%d", m[1], m[2], i)
			}
			validations = append(validations,
				compile(env, doc.Metadata.Name, label, "expression", v.Expression),
				compile(env, doc.Metadata.Name, label, "messageExpression", v.MessageExpression))
		}
	}
	cases := worstCases()
	fmt.Printf("%d validations and messages, %d matchConditions, %d requests (largest object %d bytes)\n\n",
		len(validations), len(conditions), len(cases), largest(cases))
	report(validations, cases, perCallLimit, runtimeBudget, "validations")
	report(conditions, cases, perCallLimit, matchConditionsBudget, "matchConditions")
}

func report(exprs []expression, cases []worstCase, limit, budget uint64, what string) {
	results := make([]result, len(exprs))
	policyTotals := map[string]uint64{}
	policyWorst := map[string]string{}
	for _, c := range cases {
		totals := map[string]uint64{}
		failed := false // whether the validation before a messageExpression failed
		for i, e := range exprs {
			if e.role == "messageExpression" && !failed {
				continue // the API server evaluates it only for a failed validation
			}
			out, details, err := e.program.Eval(c.vars)
			failed = err == nil && out == types.False
			var cost uint64
			if details != nil && details.ActualCost() != nil {
				cost = *details.ActualCost()
			}
			if err != nil && results[i].exceeded == "" && isCostError(err) {
				results[i].exceeded = c.name
			}
			totals[e.policy] += cost
			if cost > results[i].max {
				results[i].max, results[i].worst = cost, c.name
			}
		}
		for policy, total := range totals {
			if total > policyTotals[policy] {
				policyTotals[policy], policyWorst[policy] = total, c.name
			}
		}
	}
	fmt.Printf("| policy | %s | part | worst cost | on | share of %d |\n|---|---|---|---:|---|---:|\n", what, limit)
	for i, e := range exprs {
		r := results[i]
		mark := fmt.Sprintf("%.2f%%", 100*float64(r.max)/float64(limit))
		if r.exceeded != "" {
			mark = "OVER on " + r.exceeded
		}
		fmt.Printf("| %s | %s | %s | %d | %s | %s |\n", e.policy, e.label, e.role, r.max, r.worst, mark)
	}
	fmt.Println()
	names := make([]string, 0, len(policyTotals))
	for name := range policyTotals {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Printf("%s: all %s on one object at most %d (on %s), budget %d (%.2f%%)\n",
			name, what, policyTotals[name], policyWorst[name], budget,
			100*float64(policyTotals[name])/float64(budget))
	}
	fmt.Println()
}

func isCostError(err error) bool {
	return err != nil && regexp.MustCompile(`cost limit exceeded`).MatchString(err.Error())
}
