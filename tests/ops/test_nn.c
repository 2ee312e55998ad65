/*
 * test_nn.c -- the neural-network kernels against PyTorch: softmax and
 * log_softmax on an inner axis and on a strided view, sparse softmax
 * cross-entropy (mean/sum/none) and its gradient, layer norm and batch norm
 * forward and backward (dgamma/dbeta, the in-place running-stat update,
 * inference mode), SGD and Adam/AdamW over three steps, assign (dtypes,
 * broadcasting, overlap), embedding and its
 * backward with repeated indices; then the documented errors (label or
 * index out of range names the primitive) and dropout, whose mask must be
 * exactly sp_rng_uniform's numbers compared with p.
 *
 * Inputs are s*sin(a*i + b) (+ a constant), computed the same way here and
 * in the script at the bottom of this file, which printed the ref_* arrays
 * from torch 1.13 (CPU, float64 unless the optimizer ran in float32).  The
 * float64 kernels must match to ~1e-12, float32 to a few ulps, float16 and
 * bfloat16 to their precision.
 */
#include <stdlib.h>

#include "test.h"

/* ---- torch's values (see the script at the bottom) ---- */
static const double ref_softmax_ax1[24] = {
    0.62459088602949908,   0.82186338676221604,  0.60337318734746148,   0.2798292120581955,
    0.29156944782041672,   0.010502229393737619, 0.0016404180295692746, 0.002604982484339971,
    0.083839666150084258,  0.16763438384404636,  0.39498639462296931,   0.71756580545746462,
    0.27385545234486269,   0.12742424615562262,  0.039840361787363131,  0.0039446905478052454,
    0.0027110505231320533, 0.040386998632788683, 0.69403040985036224,   0.98502265840968006,
    0.72343349713200522,   0.83218875521158875,  0.26612922836227454,   0.011032651042514696,
};
static const double ref_log_softmax_ax1[24] = {
    -0.47065842593110269, -0.19618109389108995, -0.50521938919499376, -1.2735758188473136,
    -1.2324770586152485,  -4.5561677211429359,  -6.4128041735476904,  -5.9503293276612279,
    -2.4788490404058319,  -1.7859699577746457,  -0.92890395866670594, -0.33189062063062169,
    -1.2951548579821477,  -2.060233238758443,   -3.2228747652988607,  -5.5353847693819818,
    -5.9104190722939833,  -3.2092473618290023,  -0.36523950120713539, -0.015090634613019569,
    -0.32374665540485748, -0.18369599464716588, -1.3237732672624025,  -4.5068961262263487,
};
static const double ref_softmax_view_ax2[24] = {
    0.19240325887293552,  0.60149751120980566,   0.004222563901341252,  0.20187666601591756,
    0.47088357779674211,  0.042731652220883674,  0.0026640138749506759, 0.48372075610742343,
    0.49557055596524402,  0.0040355460983323979, 0.0082407001605877724, 0.49215319777583577,
    0.42819469908301921,  0.0030890438707876829, 0.15650588665946294,   0.41221037038673003,
    0.07022957650649872,  0.0047165931071080896, 0.85827855954240617,   0.066775270843986947,
    0.007686786350266062, 0.017116225894202027,  0.96780501465029067,   0.0073919731052410976,
};
static const double ref_xent_mean[1] = {
    2.4000019832263084,
};
static const double ref_dxent_mean[20] = {
    0.024021435779689251,  0.15339871461719193,  0.1993602055820454,    -0.38175708421946353,
    0.0049767282405368931, -0.42326948026645844, 0.0035565767051789921, 0.027771833083081458,
    0.17394529410054543,   0.21799577637765258,  0.22839026820042474,   0.026397179971826782,
    0.0085396440717865358, 0.01816501062298876,  -0.28149210286702681,  0.17026743785330273,
    -0.21924143509106928,  0.042404806619926426, 0.0049250535586072945, 0.0016441370592328432,
};
static const double ref_xent_sum[1] = {
    9.6000079329052337,
};
static const double ref_dxent_sum[20] = {
    0.033912615218384824,  0.21656289122427094,  0.28144970199818176,   -0.53895117772159562,
    0.0070259692807579663, -0.59755691331735317, 0.0050210494661350477, 0.039207293764350296,
    0.24556982696547591,   0.3077587431213919,   0.32243331981236434,   0.037266607019049575,
    0.012055968101345698,  0.025644720879513545, -0.39740061581227315,  0.24037755932230975,
    -0.30951732012856836,  0.059865609345778482, 0.0069530167886220628, 0.0023211346718581315,
};
static const double ref_xent_none[4] = {
    2.2852557459445353,
    5.5036673815205459,
    1.0856991029534342,
    0.72538570248671885,
};
static const double ref_dxent_none[20] = {
    0.028260512681987357,  0.1804690760202258,   0.23454141833181813,   -0.44912598143466298,
    0.0058549744006316387, 0.9959281888622552,   -0.008368415776891746, -0.065345489607250493,
    -0.40928304494245987,  -0.51293123853565314, 1.0747777327078811,    0.12422202339683192,
    0.040186560337818991,  0.085482402931711818, -1.3246687193742437,   0.10015731638429573,
    -0.12896555005357016,  0.024944003894074369, 0.0028970903285925262, 0.00096713944660755486,
};
static const double ref_ln_y[24] = {
    0.00089078802255140388, 1.1069142766813689,   1.285653029820248,    0.956100498941031,
    0.89723903959274109,    1.0830526097687929,   0.84379299769530769,  0.0115761191399288,
    -0.74181331340274959,   -0.90951567305998759, -0.96421316098886523, -1.6768008573329412,
    -1.961207175186767,     -1.6956387565452933,  -1.7244302775087503,  -1.5801744441070311,
    -0.74533647098909905,   0.36366941278647336,  0.80901201490375185,  0.42286638815122457,
    0.08715359811797517,    0.5153226330563756,   1.2285445639348129,   1.189268435953881,
};
static const double ref_ln_mean[2] = {
    1.0683009682699316,
    0.77560675311176153,
};
static const double ref_ln_rstd[2] = {
    0.79796045157386075,
    0.66837816057491384,
};
static const double ref_ln_dx[24] = {
    0.69017150818475992,   1.1229429462055736,    0.23477002657098309,   -0.82826667240553864,
    -0.83467726464822756,  -0.097975039856923005, 0.37955488221215888,   0.30779523459474384,
    -0.070401055914999261, -0.51412836719707433,  -0.5592296794029421,   0.16944348165748574,
    0.73523380734803512,   0.46871388367180061,   -0.53321311260007354,  -0.99342818483879181,
    -0.45902426168602439,  0.24814159642870565,   0.41573427943784086,   0.16453564695899492,
    -0.17302489294313811,  -0.36382654759904581,  -0.089442128227014694, 0.57959991404871136,
};
static const double ref_ln_dgamma[12] = {
    -1.5628722611777837,  -0.55378669153747762,  0.67131305520550333, 0.037218401193318248,
    -0.83924057187500656, -0.032763536049158826, 1.0539753530185469,  0.42553564555558865,
    -0.68606169604058054, -0.13512385875317606,  0.95178756746271675, 0.088776929499585142,
};
static const double ref_ln_dbeta[12] = {
    1.6162251886326668,   1.624135471035312,   -0.14282208797002713, -1.7537025613495243,
    -1.4481232719544637,  0.43997636234020304, 1.8472664149073641,   1.2358493997432205,
    -0.72611342612805618, -1.8945738673566699, -0.99262928984642551, 0.99406827558114164,
};
static const double ref_bn4d_y[48] = {
    0.17395222834393653,  0.9428909392273197,   1.3296361160797543,   1.1946872404331659,
    1.8049149151996624,   0.59911003325547829,  -0.52680211116619635, -1.1667005441087686,
    -2.4948040172305919,  -1.6972884227569471,  -0.47001770294108464, 0.74432672829900737,
    1.2654033342491025,   1.2908633783622945,   0.8086148501782674,   -0.0073932944048032863,
    -0.2235084753560822,  -1.0439423648985804,  -1.1918280033369233,  -0.61382245462202634,
    -0.85881418778452701, 0.40896413710828527,  1.3467639391638593,   1.6163171120525195,
    0.99954534372561454,  0.25652316061991404,  -0.62111697779905328, -1.3168067943668311,
    -1.2265424768344864,  -0.85588138307653683, 0.11949362011050588,  1.3477609023891326,
    1.1238074761080603,   1.6168007286321835,   1.344144011518883,    0.40418568352641432,
    -0.3625304306085671,  -1.1443346099589449,  -1.5554617933416712,  -1.4476167758753868,
    -0.219136899354931,   0.97860382004912227,  2.119352363648574,    2.7916362094873248,
    1.5059865546366129,   0.74004056225854087,  -0.47530453199772882, -1.701668934630415,
};
static const double ref_bn4d_mean[3] = {
    0.23543367132428472,
    -0.47796339381673414,
    0.49471774114353095,
};
static const double ref_bn4d_rstd[3] = {
    0.94692201497439454,
    1.0896826046912989,
    1.1067139263185275,
};
static const double ref_bn4d_rm[3] = {
    0.041423606903984,
    0.037370668510193876,
    0.0096449342178163838,
};
static const double ref_bn4d_rv[3] = {
    1.1052553497546465,
    1.0826206877041382,
    0.80710067814856912,
};
static const double ref_bn4d_dx[48] = {
    0.77565503454516904,  0.821318212353227,    -0.2986863509971146,    -0.93182125200694532,
    -0.19491856322438142, 1.2410484216554116,   0.88274986917118903,    -0.78529102693726993,
    -0.98888523311704712, 0.30165107926735041,  1.4614107881593645,     0.59964827126494336,
    -0.65252923828482468, -0.80340537899644493, 0.27082691311811175,    0.9817905684646917,
    0.37956392725810673,  -1.193734281368563,   -1.0532698462537402,    0.58987203784412312,
    1.5288446597069221,   0.061483518785210897, -1.5137966766705957,    -1.0356874456829632,
    0.65069649012121811,  0.90713054648166302,  -0.14863259481445593,   -0.99651200180401178,
    -0.57512188865605574, 1.0370738585273049,   1.1016386045762876,     -0.44102970392393187,
    -1.5604886015712667,  -0.47247468427543005, 1.1012108007093808,     0.89770285401304839,
    -0.53434300587479111, -0.95468946328321624, -0.0021436237126008029, 0.91534514469032524,
    0.65070677555385692,  -0.94541889927832101, -1.1190184083868326,    0.42514912344281547,
    1.2214226631229295,   0.31579491171770624,  -1.1220315356071122,    -0.79580536982244066,
};
static const double ref_bn4d_dgamma[3] = {
    -0.46400416362053232,
    -0.4769242256456066,
    2.0448828422486853,
};
static const double ref_bn4d_dbeta[3] = {
    -0.16429049260332085,
    -0.0062263276202704221,
    0.15845621602117188,
};
static const double ref_bninf_y[48] = {
    0.36429437917142726,  1.1366978811785571,   1.5251857083059019,   1.3896287612228231,
    0.99145840858954859,  -0.07204002169046464, -1.0650744803791812,  -1.6294535015320968,
    -1.8171171036213245,  -1.0150009502259958,  0.21934941956598611,  1.4406989340243266,
    1.4606634974620007,   1.4862382629874522,   1.0018167522285559,   0.18213172451261733,
    -0.79757489530708725, -1.5211829738132425,  -1.6516154730469084,  -1.1418248734597647,
    -0.17168988178093328, 1.103401765790105,    2.0466113720877486,   2.3177194929460714,
    1.1936075669821737,   0.44723737105265038,  -0.4343573605197093,  -1.1331819131427909,
    -1.6822330204009457,  -1.3553165372450089,  -0.49505315603255906, 0.58825671128317425,
    1.8223687594539775,   2.318205899322682,    2.043976331093786,    1.0985957471582084,
    -0.17460563805485493, -0.95993257954840694, -1.3729122770464377,  -1.264581316482259,
    -0.79371924313260112, 0.26266673941115476,  1.2687866379358197,   1.8617290164733264,
    2.206752481229119,    1.4363880427502045,   0.2140320928378826,   -1.0194067315777293,
};
static const double ref_bninf_dx[48] = {
    0.76740729106832373,  0.79206526351651907,  -0.34365423069853562, -0.97591947184400307,
    -0.21926847706205971, 1.0817723234503529,   0.7980141357849948,   -0.65483663035365514,
    -1.3633847013090183,  0.048050548453184322, 1.3890916321610089,   0.69511022045738868,
    -0.69731966908859444, -0.84957795677421333, 0.24279745256384741,  0.97947402508194081,
    0.34552444228172208,  -1.0185930415469926,  -0.89046933319967314, 0.54219403443293002,
    1.4016044306434283,   0.10613242065713782,  -1.3448238342336756,  -0.82561002138500506,
    0.61911193414860288,  0.89719752743209302,  -0.13911335888268281, -0.97162284852639003,
    -0.46775686187915055, 0.94355249869754498,  0.97255523817393941,  -0.42323772472907678,
    -1.4235028272993746,  -0.25907950430103022, 1.284895899457049,    0.94649580031961966,
    -0.53369479574103884, -0.93436945751224354, 0.033809324966801092, 0.95245736716265994,
    0.58454236993116948,  -0.85752452323576811, -1.0433159808960182,  0.29935291768576772,
    1.4288248899304499,   0.40900967198245369,  -1.2100056736275868,  -1.0563598726314192,
};
static const double ref_bninf_dgamma[3] = {
    -0.49641313823905797,
    -0.41755491234318648,
    2.1422348208965594,
};
static const double ref_bninf_dbeta[3] = {
    -0.16429049260332085,
    -0.0062263276202704221,
    0.15845621602117188,
};
static const double ref_bn2d_y[15] = {
    0.16426827634722252, 1.0519735797274927,   1.6171660721611223,   1.2134120801895134,
    0.60526910245096754, -0.44483863951283958, -1.1241336773951802,  -2.0580825254722077,
    -1.995775573750975,  -0.97500052893761979, -0.24608589883120294, 0.8612732463593592,
    1.2860963231910993,  1.4883967269328471,   0.94762462473179321,
};
static const double ref_bn2d_mean[3] = {
    0.24678846953388636,
    0.36399135529054771,
    0.34990111621968828,
};
static const double ref_bn2d_rstd[3] = {
    0.9732764654548739,
    0.97664316896492154,
    0.97616798017551054,
};
static const double ref_bn2d_rm[3] = {
    0.087943394015820187,
    0.17543841272528332,
    0.073993903835266828,
};
static const double ref_bn2d_rv[3] = {
    1.1629915067480989,
    1.1653174868724006,
    0.95354089589802271,
};
static const double ref_bn2d_dx[15] = {
    0.8576059787589313,    0.90203276881165195,  -0.85142529371868103, -0.38136042073245624,
    -0.28893590896037535,  1.1930582230979545,   0.06786214355986192,  -0.60758075950232382,
    -0.76904273276609847,  -0.48556293716681187, 1.1624609832007542,   0.3732197027501582,
    -0.058544764419525233, -1.1679770835497074,  0.054190100636666599,
};
static const double ref_bn2d_dgamma[3] = {
    -2.6679005878786652,
    0.23831116573341868,
    1.1886194590729726,
};
static const double ref_bn2d_dbeta[3] = {
    -0.22803076427415975,
    0.18711811056751992,
    0.32813851505667258,
};
static const double ref_sgd_mom_wd[6] = {
    0.043138694018125534, 0.55925410985946655,  0.58914661407470703,
    0.094545185565948486, -0.62325900793075562, -1.1100184917449951,
};
static const double ref_sgd_nesterov[6] = {
    -0.1052849218249321,   0.40881139039993286,  0.46139410138130188,
    0.0055400221608579159, -0.66721981763839722, -1.1117172241210938,
};
static const double ref_sgd_plain_wd[6] = {
    0.11250760406255722, 0.67836695909500122, 0.752330482006073,
    0.29294955730438232, -0.4070681631565094, -0.90293723344802856,
};
static const double ref_sgd_mom_f64[6] = {
    0.15227652830954322, 0.728017709112046,    0.79298417483211725,
    0.30761761819204775, -0.42441044365093522, -0.94374830124295439,
};
static const double ref_adam[6] = {
    0.27948331832885742, 0.86289459466934204,  0.91819190979003906,
    0.40188992023468018, -0.37250956892967224, -0.93364953994750977,
};
static const double ref_adam_wd[6] = {
    0.26833081245422363, 0.86216539144515991,  0.91791707277297974,
    0.40214827656745911, -0.37094461917877197, -0.93059360980987549,
};
static const double ref_adamw[6] = {
    0.27860510349273682, 0.8602527379989624,   0.91538572311401367,
    0.40063908696174622, -0.37142884731292725, -0.93087613582611084,
};
static const double ref_adamw_f64[6] = {
    0.2625756971561598, 0.83196916741398819,  0.88730726077277478,
    0.3751791491595714, -0.39312568478761267, -0.94833202048923093,
};
static const double ref_emb_dweight[15] = {
    0.73439709787411334,
    -0.075151120461809301,
    -0.82782646908565372,
    -0.84847037612812204,
    1.1213337988902414,
    2.2425349104260945,
    0,
    0,
    0,
    -0.058374143427580086,
    -0.81827711106441026,
    -0.95892427466313845,
    0.99060735569487035,
    0.72288134951197602,
    -0.091906850227681636,
};

/* ---- helpers ---- */

/* s*sin(a*i + b) + add for i < n: the inputs gen() makes in the script. */
static double gen_at(int64_t i, double a, double b, double s) { return s * sin(a * (double)i + b); }

/* A contiguous tensor of `dtype` holding gen values (plus `add`). */
static sp_tensor *mk(sp_dtype dtype, int ndim, const int64_t *shape, double a, double b, double s,
                     double add) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    double *v = malloc((size_t)(n ? n : 1) * sizeof(double));
    for (int64_t i = 0; i < n; i++) v[i] = gen_at(i, a, b, s) + add;
    sp_tensor *t64 = sp_tensor_from_data(SP_F64, ndim, shape, v), *t = NULL;
    free(v);
    if (!t64) return NULL;
    if (dtype == SP_F64) return t64;
    if (sp_tensor_cast(t64, dtype, &t) != SP_OK) t = NULL;
    sp_tensor_release(t64);
    return t;
}

/* A tensor from explicit doubles, converted to dtype. */
static sp_tensor *mkv(sp_dtype dtype, int ndim, const int64_t *shape, const double *v) {
    sp_tensor *t64 = sp_tensor_from_data(SP_F64, ndim, shape, v), *t = NULL;
    if (!t64 || dtype == SP_F64) return t64;
    if (sp_tensor_cast(t64, dtype, &t) != SP_OK) t = NULL;
    sp_tensor_release(t64);
    return t;
}

/* An int tensor of dtype d from int64 values. */
static sp_tensor *mki(sp_dtype d, int ndim, const int64_t *shape, const int64_t *v) {
    sp_tensor *t64 = sp_tensor_from_data(SP_I64, ndim, shape, v), *t = NULL;
    if (!t64 || d == SP_I64) return t64;
    if (sp_tensor_cast(t64, d, &t) != SP_OK) t = NULL;
    sp_tensor_release(t64);
    return t;
}

/* Every element of t (any dtype, layout) is within tol (relative, as
 * CHECK_NEAR) of ref[0..n-1]; one check per element. */
static void check_vals(const sp_tensor *t, const double *ref, int64_t n, double tol) {
    CHECK(t != NULL);
    if (!t) return;
    CHECK(sp_tensor_numel(t) == n);
    sp_tensor *c = NULL;
    CHECK_OK(sp_tensor_cast((sp_tensor *)t, SP_F64, &c));
    if (!c || sp_tensor_numel(t) != n) {
        sp_tensor_release(c);
        return;
    }
    const double *v = sp_tensor_data(c);
    for (int64_t i = 0; i < n; i++) CHECK_NEAR(v[i], ref[i], tol);
    sp_tensor_release(c);
}

/* Runs op `name` and checks that it gives `want_out` outputs. */
static sp_status call(const char *name, int n_in, sp_tensor **in, const sp_attrs *at, int want_out,
                      sp_tensor **out) {
    int n_out = -1;
    for (int i = 0; i < want_out; i++) out[i] = NULL;
    sp_tensor *tmp[SP_MAX_OUTPUTS];
    sp_status st = sp_op_call_name(name, n_in, in, at, &n_out, tmp);
    if (st == SP_OK) {
        CHECK(n_out == want_out);
        for (int i = 0; i < n_out; i++) {
            if (i < want_out)
                out[i] = tmp[i];
            else
                sp_tensor_release(tmp[i]);
        }
    }
    return st;
}

static void release_all(sp_tensor **t, int n) {
    for (int i = 0; i < n; i++) sp_tensor_release(t[i]);
}

/* Bitwise equality of two tensors of the same dtype and size. */
static int same_bits(const sp_tensor *a, const sp_tensor *b) {
    return a && b && a->dtype == b->dtype && sp_tensor_nbytes(a) == sp_tensor_nbytes(b) &&
           memcmp(sp_tensor_data(a), sp_tensor_data(b), sp_tensor_nbytes(a)) == 0;
}

/* ---- softmax ---- */

static void test_softmax_axis(void) {
    int64_t sh[3] = {2, 3, 4};
    sp_dtype dts[2] = {SP_F64, SP_F32};
    for (int d = 0; d < 2; d++) {
        sp_tensor *x = mk(dts[d], 3, sh, 0.7, 0.3, 3.0, 0), *y = NULL, *ly = NULL;
        double tol = dts[d] == SP_F64 ? 1e-13 : 5e-7;
        sp_attrs at;
        sp_attrs_init(&at);
        sp_attrs_set_int(&at, "axis", 1);
        CHECK_OK(call("softmax", 1, &x, &at, 1, &y));
        check_vals(y, ref_softmax_ax1, 24, tol);
        sp_attrs_set_int(&at, "axis", -2); /* the same axis, counted from the end */
        CHECK_OK(call("log_softmax", 1, &x, &at, 1, &ly));
        check_vals(ly, ref_log_softmax_ax1, 24, tol);
        release_all((sp_tensor *[]){x, y, ly}, 3);
    }
    /* half precision: computed in float32, rounded once */
    sp_dtype halfs[2] = {SP_F16, SP_BF16};
    for (int d = 0; d < 2; d++) {
        sp_tensor *x = mk(halfs[d], 3, sh, 0.7, 0.3, 3.0, 0), *y = NULL;
        sp_attrs at;
        sp_attrs_init(&at);
        sp_attrs_set_int(&at, "axis", 1);
        CHECK_OK(call("softmax", 1, &x, &at, 1, &y));
        CHECK(y && y->dtype == halfs[d]);
        check_vals(y, ref_softmax_ax1, 24, halfs[d] == SP_F16 ? 1e-3 : 1e-2);
        release_all((sp_tensor *[]){x, y}, 2);
    }
}

static void test_softmax_view_and_nan(void) {
    /* A permuted (non-contiguous) view: softmax along its last axis. */
    int64_t sh[3] = {2, 4, 3};
    sp_tensor *base = mk(SP_F32, 3, sh, 0.7, 0.3, 3.0, 0), *v = NULL, *y = NULL;
    CHECK_OK(sp_tensor_permute(base, (const int[]){0, 2, 1}, &v));
    CHECK(v && !sp_tensor_is_contiguous(v));
    CHECK_OK(call("softmax", 1, &v, NULL, 1, &y));
    check_vals(y, ref_softmax_view_ax2, 24, 5e-7);
    release_all((sp_tensor *[]){base, v, y}, 3);

    /* A row holding NaN is NaN throughout; the other row is untouched. */
    int64_t s2[2] = {2, 3};
    sp_tensor *x = mkv(SP_F32, 2, s2, (const double[]){1, NAN, 2, 1, 2, 3}), *z = NULL;
    CHECK_OK(call("softmax", 1, &x, NULL, 1, &z));
    if (z) {
        const float *p = sp_tensor_data(z);
        CHECK(isnan(p[0]) && isnan(p[1]) && isnan(p[2]));
        double e = exp(1) + exp(2) + exp(3);
        CHECK_NEAR(p[3], exp(1) / e, 1e-6);
        CHECK_NEAR(p[5], exp(3) / e, 1e-6);
    }
    /* Large logits do not overflow. */
    sp_tensor *big = mkv(SP_F32, 2, s2, (const double[]){1000, 1001, 999, -1000, -1000, -1000}),
              *lb = NULL;
    CHECK_OK(call("log_softmax", 1, &big, NULL, 1, &lb));
    if (lb) {
        const float *p = sp_tensor_data(lb);
        double l = log(exp(-1) + 1 + exp(-2));
        CHECK_NEAR(p[1], -l, 1e-6);
        CHECK_NEAR(p[3], -log(3), 1e-6);
    }
    release_all((sp_tensor *[]){x, z, big, lb}, 4);
}

/* ---- cross-entropy ---- */

static void test_xent(void) {
    const char *reds[3] = {"mean", "sum", "none"};
    const double *refs[3] = {ref_xent_mean, ref_xent_sum, ref_xent_none};
    const double *drefs[3] = {ref_dxent_mean, ref_dxent_sum, ref_dxent_none};
    const double dls[3][4] = {{1.7}, {0.6}, {0.5, -1.0, 2.0, 0.25}};
    int64_t sh[2] = {4, 5}, n4 = 4;
    sp_dtype lts[2] = {SP_I64, SP_I32};
    sp_dtype dts[3] = {SP_F64, SP_F32, SP_BF16};
    for (int d = 0; d < 3; d++)
        for (int r = 0; r < 3; r++) {
            sp_tensor *lg = mk(dts[d], 2, sh, 0.9, 0.1, 2.5, 0);
            sp_tensor *lab = mki(lts[(d + r) % 2], 1, &n4, (const int64_t[]){3, 0, 4, 1});
            sp_tensor *dl = mkv(dts[d], r == 2 ? 1 : 0, &n4, dls[r]);
            sp_tensor *loss = NULL, *dx = NULL;
            double tol = dts[d] == SP_F64 ? 1e-13 : dts[d] == SP_F32 ? 5e-7 : 1.5e-2;
            sp_attrs at;
            sp_attrs_init(&at);
            sp_attrs_set_str(&at, "reduction", reds[r]);
            CHECK_OK(
                call("sparse_softmax_cross_entropy", 2, (sp_tensor *[]){lg, lab}, &at, 1, &loss));
            CHECK(loss && loss->ndim == (r == 2 ? 1 : 0));
            check_vals(loss, refs[r], r == 2 ? 4 : 1, tol);
            CHECK_OK(call("sparse_softmax_cross_entropy_backward", 3, (sp_tensor *[]){lg, lab, dl},
                          &at, 1, &dx));
            check_vals(dx, drefs[r], 20, tol);
            release_all((sp_tensor *[]){lg, lab, dl, loss, dx}, 5);
        }
}

static void test_xent_errors(void) {
    int64_t sh[2] = {4, 5}, n4 = 4;
    sp_tensor *lg = mk(SP_F32, 2, sh, 0.9, 0.1, 2.5, 0);
    sp_tensor *bad = mki(SP_I64, 1, &n4, (const int64_t[]){3, 0, 5, 1});
    sp_tensor *neg = mki(SP_I32, 1, &n4, (const int64_t[]){3, -1, 2, 1});
    sp_tensor *dl = sp_tensor_scalar(SP_F32, 1.0), *out[1];
    int n_out = 7;
    CHECK_ERR(sp_op_call_name("sparse_softmax_cross_entropy", 2, (sp_tensor *[]){lg, bad}, NULL,
                              &n_out, out),
              SP_ERR_ARG,
              "sparse_softmax_cross_entropy: label 5 at position 2 out of range [0, 5)");
    CHECK_ERR(sp_op_call_name("sparse_softmax_cross_entropy", 2, (sp_tensor *[]){lg, neg}, NULL,
                              &n_out, out),
              SP_ERR_ARG, "label -1");
    CHECK_ERR(sp_op_call_name("sparse_softmax_cross_entropy_backward", 3,
                              (sp_tensor *[]){lg, bad, dl}, NULL, &n_out, out),
              SP_ERR_ARG, "sparse_softmax_cross_entropy_backward: label 5");
    CHECK(n_out == 0);
    release_all((sp_tensor *[]){lg, bad, neg, dl}, 4);
}

/* ---- layer norm ---- */

static void test_layer_norm(void) {
    int64_t sh[3] = {2, 3, 4}, gs[2] = {3, 4};
    sp_dtype dts[3] = {SP_F64, SP_F32, SP_F16};
    for (int d = 0; d < 3; d++) {
        sp_dtype dt = dts[d];
        double tol = dt == SP_F64 ? 1e-12 : dt == SP_F32 ? 5e-7 : 3e-3;
        sp_tensor *x = mk(dt, 3, sh, 0.37, 0.2, 2.0, 0.5);
        sp_tensor *g = mk(dt, 2, gs, 0.5, 1.0, 0.5, 1.0), *b = mk(dt, 2, gs, 1.3, 0.4, 0.5, 0);
        sp_tensor *dy = mk(dt, 3, sh, 1.1, 0.7, 1.0, 0);
        sp_tensor *o[3] = {0}, *bo[3] = {0};
        sp_attrs at;
        sp_attrs_init(&at);
        sp_attrs_set_int(&at, "axis", 1);
        CHECK_OK(call("layer_norm", 3, (sp_tensor *[]){x, g, b}, &at, 3, o));
        check_vals(o[0], ref_ln_y, 24, tol);
        check_vals(o[1], ref_ln_mean, 2, dt == SP_F16 ? 3e-4 : tol);
        check_vals(o[2], ref_ln_rstd, 2, dt == SP_F16 ? 3e-4 : tol);
        CHECK(o[1] && o[1]->ndim == 1 && o[1]->shape[0] == 2);
        if (o[2])
            CHECK_OK(
                call("layer_norm_backward", 5, (sp_tensor *[]){dy, x, g, o[1], o[2]}, &at, 3, bo));
        check_vals(bo[0], ref_ln_dx, 24, tol);
        check_vals(bo[1], ref_ln_dgamma, 12, tol);
        check_vals(bo[2], ref_ln_dbeta, 12, tol);
        release_all((sp_tensor *[]){x, g, b, dy}, 4);
        release_all(o, 3);
        release_all(bo, 3);
    }
}

/* ---- batch norm ---- */

static void bn_case(int ndim, const int64_t *sh, double mom, const double *ry, const double *rmean,
                    const double *rrstd, const double *rrm, const double *rrv, const double *rdx,
                    const double *rdg, const double *rdb, int inference) {
    int64_t n = 1, c3 = 3;
    for (int i = 0; i < ndim; i++) n *= sh[i];
    for (int d = 0; d < 2; d++) {
        sp_dtype dt = d ? SP_F32 : SP_F64;
        double tol = dt == SP_F64 ? 1e-12 : 5e-7;
        sp_tensor *x = mk(dt, ndim, sh, 0.61, 0.2, 1.5, 0),
                  *dy = mk(dt, ndim, sh, 1.3, 0.9, 1.0, 0);
        sp_tensor *g = mk(dt, 1, &c3, 0.9, 0.1, 0.3, 1.0), *b = mk(dt, 1, &c3, 0.4, 0.6, 0.2, 0);
        sp_tensor *rm = mk(dt, 1, &c3, 1.7, 0.2, 0.1, 0), *rv = mk(dt, 1, &c3, 2.1, 0.5, 0.2, 1.0);
        sp_tensor *o[3] = {0}, *bo[3] = {0};
        sp_attrs at;
        sp_attrs_init(&at);
        sp_attrs_set_float(&at, "momentum", mom);
        CHECK_OK(call("batch_norm", 5, (sp_tensor *[]){x, g, b, rm, rv}, &at, 3, o));
        check_vals(o[0], ry, n, tol);
        check_vals(o[1], rmean, 3, tol);
        check_vals(o[2], rrstd, 3, tol);
        check_vals(rm, rrm, 3, tol); /* updated in place */
        check_vals(rv, rrv, 3, tol);
        if (o[2])
            CHECK_OK(
                call("batch_norm_backward", 5, (sp_tensor *[]){dy, x, g, o[1], o[2]}, &at, 3, bo));
        check_vals(bo[0], rdx, n, tol);
        check_vals(bo[1], rdg, 3, tol);
        check_vals(bo[2], rdb, 3, tol);
        release_all(o, 3);
        release_all(bo, 3);
        if (inference) { /* eval mode with the updated running stats; they stay put */
            sp_attrs_set_int(&at, "training", 0);
            CHECK_OK(call("batch_norm", 5, (sp_tensor *[]){x, g, b, rm, rv}, &at, 3, o));
            check_vals(o[0], ref_bninf_y, n, tol);
            check_vals(o[1], rrm, 3, tol);
            check_vals(rm, rrm, 3, tol);
            check_vals(rv, rrv, 3, tol);
            if (o[2]) {
                CHECK_NEAR(sp_tensor_get(o[2], (const int64_t[]){1}), 1 / sqrt(rrv[1] + 1e-5), tol);
                CHECK_OK(call("batch_norm_backward", 5, (sp_tensor *[]){dy, x, g, o[1], o[2]}, &at,
                              3, bo));
            }
            check_vals(bo[0], ref_bninf_dx, n, tol);
            check_vals(bo[1], ref_bninf_dgamma, 3, tol);
            check_vals(bo[2], ref_bninf_dbeta, 3, tol);
            release_all(o, 3);
            release_all(bo, 3);
        }
        release_all((sp_tensor *[]){x, dy, g, b, rm, rv}, 6);
    }
}

static void test_batch_norm(void) {
    bn_case(4, (const int64_t[]){4, 3, 2, 2}, 0.1, ref_bn4d_y, ref_bn4d_mean, ref_bn4d_rstd,
            ref_bn4d_rm, ref_bn4d_rv, ref_bn4d_dx, ref_bn4d_dgamma, ref_bn4d_dbeta, 1);
    bn_case(2, (const int64_t[]){5, 3}, 0.3, ref_bn2d_y, ref_bn2d_mean, ref_bn2d_rstd, ref_bn2d_rm,
            ref_bn2d_rv, ref_bn2d_dx, ref_bn2d_dgamma, ref_bn2d_dbeta, 0);
    /* One value per channel cannot give a variance in training. */
    int64_t sh[2] = {1, 3}, c3 = 3;
    sp_tensor *x = mk(SP_F32, 2, sh, 1, 0, 1, 0), *g = mk(SP_F32, 1, &c3, 0, 1, 1, 0);
    sp_tensor *rm = mk(SP_F32, 1, &c3, 0, 0, 0, 0), *rv = mk(SP_F32, 1, &c3, 0, 0, 0, 1), *o[3];
    int n_out = 7;
    CHECK_ERR(sp_op_call_name("batch_norm", 5, (sp_tensor *[]){x, g, g, rm, rv}, NULL, &n_out, o),
              SP_ERR_SHAPE, "batch_norm");
    CHECK(n_out == 0);
    CHECK_NEAR(sp_tensor_get(rm, (const int64_t[]){0}), 0, 0); /* untouched by the failure */
    release_all((sp_tensor *[]){x, g, rm, rv}, 4);
}

/* layer_norm_backward and batch_norm(+backward) on inputs big enough to be
 * split: identical bits with 1 and 2 threads. */
static void test_norm_threads(void) {
    int64_t sh[2] = {300, 517}, d = 517, c = 517;
    sp_tensor *res[2][6] = {{0}};
    int saved = sp_get_num_threads();
    for (int t = 0; t < 2; t++) {
        sp_set_num_threads(t + 1);
        sp_tensor *x = mk(SP_F32, 2, sh, 0.013, 0.2, 2.0, 0.3),
                  *dy = mk(SP_F32, 2, sh, 0.71, 0, 1, 0);
        sp_tensor *g = mk(SP_F32, 1, &d, 0.5, 1, 0.5, 1), *b = mk(SP_F32, 1, &d, 1.3, 0, 0.5, 0);
        sp_tensor *rm = mk(SP_F32, 1, &c, 0, 0, 0, 0), *rv = mk(SP_F32, 1, &c, 0, 0, 0, 1);
        sp_tensor *o[3] = {0}, *bo[3] = {0}, *bn[3] = {0}, *bnb[3] = {0};
        CHECK_OK(call("layer_norm", 3, (sp_tensor *[]){x, g, b}, NULL, 3, o));
        if (o[2])
            CHECK_OK(
                call("layer_norm_backward", 5, (sp_tensor *[]){dy, x, g, o[1], o[2]}, NULL, 3, bo));
        CHECK_OK(call("batch_norm", 5, (sp_tensor *[]){x, g, b, rm, rv}, NULL, 3, bn));
        if (bn[2])
            CHECK_OK(call("batch_norm_backward", 5, (sp_tensor *[]){dy, x, g, bn[1], bn[2]}, NULL,
                          3, bnb));
        res[t][0] = o[0];
        res[t][1] = bo[0];
        res[t][2] = bo[1];
        res[t][3] = bn[0];
        res[t][4] = bnb[0];
        res[t][5] = bnb[1];
        release_all((sp_tensor *[]){x, dy, g, b, rm, rv, o[1], o[2], bo[2], bn[1], bn[2], bnb[2]},
                    12);
    }
    sp_set_num_threads(saved);
    for (int k = 0; k < 6; k++) CHECK(same_bits(res[0][k], res[1][k]));
    release_all(res[0], 6);
    release_all(res[1], 6);
}

/* ---- optimizers ---- */

/* Three steps of an optimizer on gen(6, 0.8, 0.3); grads gen(6, 0.3+0.1k, k). */
static void opt_case(const char *op, sp_dtype dt, const sp_attrs *at, double lr, const double *ref,
                     double tol) {
    int64_t n6 = 6;
    int adam = !strcmp(op, "adam_update");
    sp_tensor *p = mk(dt, 1, &n6, 0.8, 0.3, 1, 0);
    sp_tensor *s1 = mk(dt, 1, &n6, 0, 0, 0, 0), *s2 = mk(dt, 1, &n6, 0, 0, 0, 0);
    sp_tensor *lrt = sp_tensor_scalar(SP_F64, lr);
    for (int k = 0; k < 3; k++) {
        sp_tensor *g = mk(dt, 1, &n6, 0.3 + 0.1 * k, (double)k, 1, 0);
        sp_tensor *step = sp_tensor_scalar(SP_I64, k + 1);
        if (adam)
            CHECK_OK(call(op, 6, (sp_tensor *[]){p, g, s1, s2, lrt, step}, at, 0, NULL));
        else
            CHECK_OK(call(op, 4, (sp_tensor *[]){p, g, s1, lrt}, at, 0, NULL));
        release_all((sp_tensor *[]){g, step}, 2);
    }
    check_vals(p, ref, 6, tol);
    release_all((sp_tensor *[]){p, s1, s2, lrt}, 4);
}

static void test_sgd(void) {
    sp_attrs at;
    sp_attrs_init(&at);
    sp_attrs_set_float(&at, "momentum", 0.9);
    sp_attrs_set_float(&at, "weight_decay", 0.01);
    opt_case("sgd_update", SP_F32, &at, 0.1, ref_sgd_mom_wd, 3e-7);
    sp_attrs_init(&at);
    sp_attrs_set_float(&at, "momentum", 0.9);
    sp_attrs_set_int(&at, "nesterov", 1);
    opt_case("sgd_update", SP_F32, &at, 0.1, ref_sgd_nesterov, 3e-7);
    sp_attrs_init(&at);
    sp_attrs_set_float(&at, "weight_decay", 0.1);
    opt_case("sgd_update", SP_F32, &at, 0.1, ref_sgd_plain_wd, 3e-7);
    opt_case("sgd_update", SP_BF16, &at, 0.1, ref_sgd_plain_wd, 1e-2);
    sp_attrs_init(&at);
    sp_attrs_set_float(&at, "momentum", 0.5);
    sp_attrs_set_float(&at, "weight_decay", 0.02);
    sp_attrs_set_int(&at, "nesterov", 1);
    opt_case("sgd_update", SP_F64, &at, 0.05, ref_sgd_mom_f64, 1e-14);
    opt_case("sgd_update", SP_F16, &at, 0.05, ref_sgd_mom_f64, 1e-3);
}

static void test_adam(void) {
    sp_attrs at;
    sp_attrs_init(&at);
    opt_case("adam_update", SP_F32, &at, 0.01, ref_adam, 3e-7);
    opt_case("adam_update", SP_F16, &at, 0.01, ref_adam, 1e-3);
    sp_attrs_set_float(&at, "beta1", 0.8);
    sp_attrs_set_float(&at, "beta2", 0.99);
    sp_attrs_set_float(&at, "weight_decay", 0.1);
    opt_case("adam_update", SP_F32, &at, 0.01, ref_adam_wd, 3e-7);
    sp_attrs_init(&at);
    sp_attrs_set_float(&at, "weight_decay", 0.1);
    sp_attrs_set_int(&at, "decoupled", 1);
    opt_case("adam_update", SP_F32, &at, 0.01, ref_adamw, 3e-7);
    opt_case("adam_update", SP_BF16, &at, 0.01, ref_adamw, 1e-2);
    sp_attrs_init(&at);
    sp_attrs_set_float(&at, "weight_decay", 0.05);
    sp_attrs_set_float(&at, "eps", 1e-6);
    sp_attrs_set_int(&at, "decoupled", 1);
    opt_case("adam_update", SP_F64, &at, 0.02, ref_adamw_f64, 1e-14);

    /* Without bias correction: one step by hand. */
    int64_t n1 = 1;
    sp_tensor *p = mkv(SP_F64, 1, &n1, (const double[]){1.0}),
              *g = mkv(SP_F64, 1, &n1, (const double[]){0.5});
    sp_tensor *m = mkv(SP_F64, 1, &n1, (const double[]){0.2}),
              *v = mkv(SP_F64, 1, &n1, (const double[]){0.3});
    sp_tensor *lr = sp_tensor_scalar(SP_F32, 0.125), *step = sp_tensor_scalar(SP_F64, 0);
    sp_attrs_init(&at);
    sp_attrs_set_int(&at, "bias_correction", 0);
    CHECK_OK(call("adam_update", 6, (sp_tensor *[]){p, g, m, v, lr, step}, &at, 0, NULL));
    double mm = 0.9 * 0.2 + 0.1 * 0.5, vv = 0.999 * 0.3 + 0.001 * 0.25;
    CHECK_NEAR(sp_tensor_get(m, (const int64_t[]){0}), mm, 1e-15);
    CHECK_NEAR(sp_tensor_get(v, (const int64_t[]){0}), vv, 1e-15);
    CHECK_NEAR(sp_tensor_get(p, (const int64_t[]){0}), 1.0 - 0.125 * mm / (sqrt(vv) + 1e-8), 1e-15);
    /* step 0 with bias correction divides by zero: an error */
    sp_attrs_init(&at);
    int n_out = 7;
    sp_tensor *none[1];
    CHECK_ERR(
        sp_op_call_name("adam_update", 6, (sp_tensor *[]){p, g, m, v, lr, step}, &at, &n_out, none),
        SP_ERR_ARG, "adam_update: step");
    release_all((sp_tensor *[]){p, g, m, v, lr, step}, 6);
}

/* ---- assign ---- */

/* assign: a converting, broadcasting copy into the variable, whatever the
 * dtypes; a value overlapping the variable is read before it is written. */
static void test_assign(void) {
    int64_t s23[2] = {2, 3}, s3 = 3, s6 = 6;
    const double v6[6] = {1.5, -2.25, 3.0, 0.0, 7.75, -8.5};
    /* float64 -> float32, same shape */
    sp_tensor *var = mk(SP_F32, 2, s23, 0.4, 0.2, 1, 0), *val = mkv(SP_F64, 2, s23, v6);
    CHECK_OK(call("assign", 2, (sp_tensor *[]){var, val}, NULL, 0, NULL));
    check_vals(var, v6, 6, 0);
    sp_tensor_release(val);
    /* int32 row broadcast over the rows, converted to float32 */
    val = mki(SP_I32, 1, &s3, (const int64_t[]){4, -5, 6});
    CHECK_OK(call("assign", 2, (sp_tensor *[]){var, val}, NULL, 0, NULL));
    check_vals(var, (const double[]){4, -5, 6, 4, -5, 6}, 6, 0);
    sp_tensor_release(val);
    /* a 0-d step counter: int32 <- int64 */
    sp_tensor *step = sp_tensor_scalar(SP_I32, 3), *seven = sp_tensor_scalar(SP_I64, 7);
    CHECK_OK(call("assign", 2, (sp_tensor *[]){step, seven}, NULL, 0, NULL));
    CHECK(step && sp_tensor_get(step, NULL) == 7);
    /* float -> bool (nonzero), float -> bfloat16, bool -> float16 */
    sp_tensor *b = mki(SP_BOOL, 1, &s6, (const int64_t[]){1, 1, 0, 1, 0, 0});
    val = mkv(SP_F32, 1, &s6, v6);
    CHECK_OK(call("assign", 2, (sp_tensor *[]){b, val}, NULL, 0, NULL));
    check_vals(b, (const double[]){1, 1, 1, 0, 1, 1}, 6, 0);
    sp_tensor *bf = mk(SP_BF16, 1, &s6, 0.3, 0.1, 1, 0), *h = mk(SP_F16, 1, &s6, 0.3, 0.1, 1, 0);
    CHECK_OK(call("assign", 2, (sp_tensor *[]){bf, val}, NULL, 0, NULL));
    check_vals(bf, v6, 6, 0); /* every value is exact in bfloat16 */
    CHECK_OK(call("assign", 2, (sp_tensor *[]){h, b}, NULL, 0, NULL));
    check_vals(h, (const double[]){1, 1, 1, 0, 1, 1}, 6, 0);
    sp_tensor_release(val);
    /* overlap: x[2:6] = x[0:4] must read the old x[0:4] (a forward copy
     * would smear x[0:2] over the whole tail) */
    sp_tensor *x = mkv(SP_F64, 1, &s6, v6), *hi = NULL, *lo = NULL;
    CHECK_OK(sp_tensor_slice(x, 0, 2, 6, 1, &hi));
    CHECK_OK(sp_tensor_slice(x, 0, 0, 4, 1, &lo));
    CHECK_OK(call("assign", 2, (sp_tensor *[]){hi, lo}, NULL, 0, NULL));
    check_vals(x, (const double[]){1.5, -2.25, 1.5, -2.25, 3.0, 0.0}, 6, 0);
    /* the variable itself: nothing changes */
    CHECK_OK(call("assign", 2, (sp_tensor *[]){x, x}, NULL, 0, NULL));
    check_vals(x, (const double[]){1.5, -2.25, 1.5, -2.25, 3.0, 0.0}, 6, 0);
    /* errors: a value that does not broadcast to the variable's shape, or
     * would grow it; a strided variable */
    sp_tensor *out1[1];
    int n_out = 5;
    CHECK_ERR(sp_op_call_name("assign", 2, (sp_tensor *[]){var, x}, NULL, &n_out, out1), SP_ERR_SHAPE,
              "assign: value of shape (6,) cannot be assigned to a variable of shape (2, 3)");
    CHECK_ERR(sp_op_call_name("assign", 2, (sp_tensor *[]){step, x}, NULL, &n_out, out1), SP_ERR_SHAPE,
              "assign: value of shape (6,) cannot be assigned to a variable of shape ()");
    sp_tensor *vt = NULL;
    CHECK_OK(sp_tensor_transpose(var, 0, 1, &vt));
    CHECK_ERR(sp_op_call_name("assign", 2, (sp_tensor *[]){vt, seven}, NULL, &n_out, out1), SP_ERR_ARG,
              "assign: input 0 must be contiguous");
    release_all((sp_tensor *[]){var, step, seven, b, bf, h, x, hi, lo, vt}, 10);
}

/* ---- embedding ---- */

static void test_embedding(void) {
    int64_t ws[2] = {5, 3}, is[2] = {2, 3}, ds[3] = {2, 3, 3};
    const int64_t idx[6] = {1, 3, 1, 0, 1, 4};
    sp_dtype dts[3] = {SP_F64, SP_F32, SP_F16};
    for (int d = 0; d < 3; d++) {
        sp_tensor *w = mk(dts[d], 2, ws, 0.45, 0.1, 1, 0),
                  *i = mki(d == 1 ? SP_I32 : SP_I64, 2, is, idx);
        sp_tensor *dout = mk(dts[d], 3, ds, 0.9, 0.5, 1, 0), *y = NULL, *dw = NULL;
        CHECK_OK(call("embedding", 2, (sp_tensor *[]){w, i}, NULL, 1, &y));
        CHECK(y && y->ndim == 3 && y->shape[2] == 3 && y->dtype == dts[d]);
        if (y)
            for (int k = 0; k < 18; k++)
                CHECK(sp_tensor_get(y, (const int64_t[]){k / 9, (k / 3) % 3, k % 3}) ==
                      sp_tensor_get(w, (const int64_t[]){idx[k / 3], k % 3}));
        sp_attrs at;
        sp_attrs_init(&at);
        sp_attrs_set_int(&at, "num_embeddings", 5);
        CHECK_OK(call("embedding_backward", 2, (sp_tensor *[]){dout, i}, &at, 1, &dw));
        CHECK(dw && dw->ndim == 2 && dw->shape[0] == 5 && dw->shape[1] == 3);
        check_vals(dw, ref_emb_dweight, 15,
                   dts[d] == SP_F16   ? 1e-3
                   : dts[d] == SP_F32 ? 2e-7
                                      : 1e-15);
        release_all((sp_tensor *[]){w, i, dout, y, dw}, 5);
    }
    /* out of range, both ways, in forward and backward */
    sp_tensor *w = mk(SP_F32, 2, ws, 0.45, 0.1, 1, 0), *out[1];
    sp_tensor *bad = mki(SP_I64, 2, is, (const int64_t[]){1, 3, 5, 0, 1, 4});
    sp_tensor *neg = mki(SP_I32, 2, is, (const int64_t[]){1, 3, 1, 0, -2, 4});
    sp_tensor *dout = mk(SP_F32, 3, ds, 0.9, 0.5, 1, 0);
    int n_out = 7;
    CHECK_ERR(sp_op_call_name("embedding", 2, (sp_tensor *[]){w, bad}, NULL, &n_out, out),
              SP_ERR_ARG, "embedding: index 5 at position 2 out of range [0, 5)");
    CHECK(n_out == 0);
    CHECK_ERR(sp_op_call_name("embedding", 2, (sp_tensor *[]){w, neg}, NULL, &n_out, out),
              SP_ERR_ARG, "embedding: index -2");
    sp_attrs at;
    sp_attrs_init(&at);
    sp_attrs_set_int(&at, "num_embeddings", 5);
    CHECK_ERR(
        sp_op_call_name("embedding_backward", 2, (sp_tensor *[]){dout, bad}, &at, &n_out, out),
        SP_ERR_ARG, "embedding_backward: index 5");
    release_all((sp_tensor *[]){w, bad, neg, dout}, 4);
}

/* ---- dropout ---- */

static sp_status dropout(sp_tensor *x, double p, int64_t seed, int64_t offset, sp_tensor **o) {
    sp_attrs at;
    sp_attrs_init(&at);
    sp_attrs_set_float(&at, "p", p);
    if (seed >= 0) {
        sp_attrs_set_int(&at, "seed", seed);
        sp_attrs_set_int(&at, "offset", offset);
    }
    return call("dropout", 1, &x, &at, 2, o);
}

static void test_dropout_values(void) {
    int64_t n = 1003;
    double p = 0.3;
    sp_tensor *x = mk(SP_F32, 1, &n, 0.37, 0.1, 2, 0), *o[2] = {0};
    sp_tensor *u = sp_tensor_new(SP_F64, 1, &n, SP_CPU);
    CHECK_OK(sp_rng_uniform(u, 1234, 7, 0, 1));
    CHECK_OK(dropout(x, p, 1234, 7, o));
    if (o[0] && o[1]) {
        CHECK(o[1]->dtype == SP_BOOL && o[0]->dtype == SP_F32);
        const float *xv = sp_tensor_data(x), *y = sp_tensor_data(o[0]);
        const uint8_t *mask = sp_tensor_data(o[1]);
        const double *uv = sp_tensor_data(u);
        int bad_mask = 0, bad_y = 0;
        for (int64_t i = 0; i < n; i++) {
            bad_mask += mask[i] != (uv[i] >= p);
            double want = mask[i] ? xv[i] / (1 - p) : 0.0;
            bad_y += fabs(y[i] - want) > 1e-6 * fabs(want);
        }
        CHECK(bad_mask == 0);
        CHECK(bad_y == 0);
    }
    /* the same seed gives the same mask for every dtype of x */
    sp_dtype dts[3] = {SP_F64, SP_F16, SP_BF16};
    for (int d = 0; d < 3; d++) {
        sp_tensor *xd = mk(dts[d], 1, &n, 0.37, 0.1, 2, 0), *od[2] = {0};
        CHECK_OK(dropout(xd, p, 1234, 7, od));
        CHECK(o[1] && same_bits(od[1], o[1]));
        CHECK(od[0] && od[0]->dtype == dts[d]);
        if (od[0] && o[1]) {
            const uint8_t *mask = sp_tensor_data(o[1]);
            int bad = 0;
            for (int64_t i = 0; i < n; i++) {
                double xi = sp_tensor_get(xd, &i), yi = sp_tensor_get(od[0], &i);
                double want = mask[i] ? xi / (1 - p) : 0.0;
                bad += fabs(yi - want) > (dts[d] == SP_F64 ? 1e-15 : 8e-3) * fabs(want);
            }
            CHECK(bad == 0);
        }
        release_all((sp_tensor *[]){xd, od[0], od[1]}, 3);
    }
    release_all((sp_tensor *[]){u, o[0], o[1]}, 3);

    /* p == 0 is the identity, p == 1 gives zeros (even for inf) */
    sp_tensor *e[2] = {0}, *z[2] = {0};
    CHECK_OK(dropout(x, 0, 5, 0, e));
    CHECK(same_bits(e[0], x));
    if (e[1]) {
        int all = 1;
        for (int64_t i = 0; i < n; i++) all &= ((const uint8_t *)sp_tensor_data(e[1]))[i] == 1;
        CHECK(all);
    }
    ((float *)sp_tensor_data(x))[3] = INFINITY;
    CHECK_OK(dropout(x, 1, 5, 0, z));
    if (z[0] && z[1]) {
        int zeros = 1;
        for (int64_t i = 0; i < n; i++)
            zeros &= ((const float *)sp_tensor_data(z[0]))[i] == 0 &&
                     ((const uint8_t *)sp_tensor_data(z[1]))[i] == 0;
        CHECK(zeros);
    }
    int n_out = 7;
    sp_tensor *bo[2];
    sp_attrs at;
    sp_attrs_init(&at);
    sp_attrs_set_float(&at, "p", 1.5);
    CHECK_ERR(sp_op_call_name("dropout", 1, &x, &at, &n_out, bo), SP_ERR_ARG, "dropout");
    release_all((sp_tensor *[]){x, e[0], e[1], z[0], z[1]}, 5);
}

static void test_dropout_stats_threads(void) {
    int64_t n = 100000;
    double p = 0.37;
    sp_tensor *x = mk(SP_F32, 1, &n, 0.01, 0, 1, 2), *a[2] = {0}, *b[2] = {0};
    int saved = sp_get_num_threads();
    sp_set_num_threads(1);
    CHECK_OK(dropout(x, p, 99, 1000, a));
    sp_set_num_threads(2);
    CHECK_OK(dropout(x, p, 99, 1000, b));
    sp_set_num_threads(saved);
    CHECK(same_bits(a[0], b[0]));
    CHECK(same_bits(a[1], b[1]));
    if (a[1]) {
        int64_t dropped = 0;
        for (int64_t i = 0; i < n; i++) dropped += !((const uint8_t *)sp_tensor_data(a[1]))[i];
        /* sd of the fraction is sqrt(p(1-p)/n) = 0.0015: 0.01 is ~7 sd */
        CHECK(fabs((double)dropped / (double)n - p) < 0.01);
    }
    /* Without a seed, consecutive calls draw fresh numbers. */
    sp_tensor *c[2] = {0}, *d[2] = {0};
    CHECK_OK(dropout(x, p, -1, 0, c));
    CHECK_OK(dropout(x, p, -1, 0, d));
    CHECK(c[1] && d[1] && !same_bits(c[1], d[1]));
    release_all((sp_tensor *[]){x, a[0], a[1], b[0], b[1], c[0], c[1], d[0], d[1]}, 9);
}

/* Empty inputs: valid results, no stray reads or writes (ASan). */
static void test_edges(void) {
    int64_t e03[2] = {0, 3}, e0 = 0, w53[2] = {5, 3}, e20[2] = {2, 0};
    sp_tensor *x = sp_tensor_zeros(SP_F32, 2, e03, SP_CPU),
              *lab = sp_tensor_zeros(SP_I64, 1, &e0, SP_CPU);
    sp_tensor *o[3] = {0};
    CHECK_OK(call("softmax", 1, &x, NULL, 1, o));
    CHECK(o[0] && sp_tensor_numel(o[0]) == 0);
    release_all(o, 1);
    CHECK_OK(call("sparse_softmax_cross_entropy", 2, (sp_tensor *[]){x, lab}, NULL, 1, o));
    CHECK(o[0] && isnan(sp_tensor_get(o[0], NULL))); /* mean of nothing, as torch */
    release_all(o, 1);
    sp_tensor *w = mk(SP_F32, 2, w53, 0.45, 0.1, 1, 0),
              *dout = sp_tensor_zeros(SP_F32, 2, e03, SP_CPU);
    CHECK_OK(call("embedding", 2, (sp_tensor *[]){w, lab}, NULL, 1, o));
    CHECK(o[0] && o[0]->ndim == 2 && o[0]->shape[0] == 0 && o[0]->shape[1] == 3);
    release_all(o, 1);
    sp_attrs at;
    sp_attrs_init(&at);
    sp_attrs_set_int(&at, "num_embeddings", 5);
    CHECK_OK(call("embedding_backward", 2, (sp_tensor *[]){dout, lab}, &at, 1, o));
    if (o[0]) {
        int zeros = 1;
        for (int k = 0; k < 15; k++) zeros &= ((const float *)sp_tensor_data(o[0]))[k] == 0;
        CHECK(zeros);
    }
    release_all(o, 1);
    CHECK_OK(dropout(x, 0.5, 1, 0, o));
    release_all(o, 2);
    sp_tensor *z = sp_tensor_zeros(SP_F32, 2, e20, SP_CPU),
              *g = sp_tensor_zeros(SP_F32, 1, &e0, SP_CPU);
    CHECK_OK(call("layer_norm", 3, (sp_tensor *[]){z, g, g}, NULL, 3, o));
    CHECK(o[1] && o[1]->ndim == 1 && o[1]->shape[0] == 2);
    release_all(o, 3);
    release_all((sp_tensor *[]){x, lab, w, dout, z, g}, 6);
}

int main(void) {
    int64_t live = sp_cpu_live_bytes();
    RUN(test_softmax_axis);
    RUN(test_softmax_view_and_nan);
    RUN(test_xent);
    RUN(test_xent_errors);
    RUN(test_layer_norm);
    RUN(test_batch_norm);
    RUN(test_norm_threads);
    RUN(test_sgd);
    RUN(test_adam);
    RUN(test_assign);
    RUN(test_embedding);
    RUN(test_dropout_values);
    RUN(test_dropout_stats_threads);
    RUN(test_edges);
    CHECK(sp_cpu_live_bytes() == live);
    return TEST_SUMMARY();
}

/*
 * The script that printed the ref_* arrays (/usr/bin/python3 with torch):
 *
 * # Reference values for tests/ops/test_nn.c, from PyTorch (CPU, float64).
 * # Inputs are gen(n, a, b, s)[i] = s*sin(a*i + b), computed the same way in C.
 * import math, torch
 * torch.set_default_dtype(torch.float64)
 * def gen(n, a, b, s=1.0): return torch.tensor([s*math.sin(a*i+b) for i in range(n)])
 * def emit(name, t):
 *     v = t.detach().reshape(-1).tolist()
 *     print("static const double %s[%d] = {%s};" % (name, len(v), ", ".join("%.17g" % x for x in v)))
 *
 * x = gen(24, 0.7, 0.3, 3.0).reshape(2, 3, 4)
 * emit("ref_softmax_ax1", torch.softmax(x, 1)); emit("ref_log_softmax_ax1", torch.log_softmax(x, 1))
 * xb = gen(24, 0.7, 0.3, 3.0).reshape(2, 4, 3).permute(0, 2, 1)   # a permuted view, softmax on axis 2
 * emit("ref_softmax_view_ax2", torch.softmax(xb, 2))
 *
 * lg = gen(20, 0.9, 0.1, 2.5).reshape(4, 5); lab = torch.tensor([3, 0, 4, 1])
 * for red, dl in (("mean", torch.tensor(1.7)), ("sum", torch.tensor(0.6)), ("none", torch.tensor([0.5, -1.0, 2.0, 0.25]))):
 *     l = lg.clone().requires_grad_()
 *     loss = torch.nn.functional.cross_entropy(l, lab, reduction=red)
 *     loss.backward(dl)
 *     emit("ref_xent_%s" % red, loss); emit("ref_dxent_%s" % red, l.grad)
 *
 * x = (gen(24, 0.37, 0.2, 2.0) + 0.5).reshape(2, 3, 4).requires_grad_()
 * g = (1 + 0.5*gen(12, 0.5, 1.0)).reshape(3, 4).requires_grad_(); b = gen(12, 1.3, 0.4, 0.5).reshape(3, 4).requires_grad_()
 * y = torch.nn.functional.layer_norm(x, (3, 4), g, b, 1e-5)
 * y.backward(gen(24, 1.1, 0.7).reshape(2, 3, 4))
 * xd = x.detach().reshape(2, -1)
 * emit("ref_ln_y", y); emit("ref_ln_mean", xd.mean(1)); emit("ref_ln_rstd", 1/torch.sqrt(xd.var(1, unbiased=False) + 1e-5))
 * emit("ref_ln_dx", x.grad); emit("ref_ln_dgamma", g.grad); emit("ref_ln_dbeta", b.grad)
 *
 * for tag, shape, mom in (("4d", (4, 3, 2, 2), 0.1), ("2d", (5, 3), 0.3)):
 *     n = 1
 *     for s in shape: n *= s
 *     x = gen(n, 0.61, 0.2, 1.5).reshape(shape).requires_grad_()
 *     g = (1 + 0.3*gen(3, 0.9, 0.1)).requires_grad_(); b = gen(3, 0.4, 0.6, 0.2).requires_grad_()
 *     rm = 0.1*gen(3, 1.7, 0.2); rv = 1 + 0.2*gen(3, 2.1, 0.5)
 *     y = torch.nn.functional.batch_norm(x, rm, rv, g, b, True, mom, 1e-5)
 *     dy = gen(n, 1.3, 0.9).reshape(shape); y.backward(dy)
 *     dims = [0] + list(range(2, len(shape)))
 *     emit("ref_bn%s_y" % tag, y); emit("ref_bn%s_mean" % tag, x.detach().mean(dims))
 *     emit("ref_bn%s_rstd" % tag, 1/torch.sqrt(x.detach().var(dims, unbiased=False) + 1e-5))
 *     emit("ref_bn%s_rm" % tag, rm); emit("ref_bn%s_rv" % tag, rv)
 *     emit("ref_bn%s_dx" % tag, x.grad); emit("ref_bn%s_dgamma" % tag, g.grad); emit("ref_bn%s_dbeta" % tag, b.grad)
 *     if tag == "4d":   # inference with the updated running stats
 *         x2 = x.detach().clone().requires_grad_(); g2 = g.detach().clone().requires_grad_(); b2 = b.detach().clone().requires_grad_()
 *         y2 = torch.nn.functional.batch_norm(x2, rm, rv, g2, b2, False, mom, 1e-5); y2.backward(dy)
 *         emit("ref_bninf_y", y2); emit("ref_bninf_dx", x2.grad); emit("ref_bninf_dgamma", g2.grad); emit("ref_bninf_dbeta", b2.grad)
 *
 * def run_opt(make, dtype):
 *     p = gen(6, 0.8, 0.3).to(dtype).requires_grad_()
 *     opt = make([p])
 *     for k in range(3):
 *         p.grad = gen(6, 0.3 + 0.1*k, float(k)).to(dtype)
 *         opt.step()
 *     return p.detach()
 * emit("ref_sgd_mom_wd", run_opt(lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01), torch.float32))
 * emit("ref_sgd_nesterov", run_opt(lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True), torch.float32))
 * emit("ref_sgd_plain_wd", run_opt(lambda ps: torch.optim.SGD(ps, lr=0.1, weight_decay=0.1), torch.float32))
 * emit("ref_sgd_mom_f64", run_opt(lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.5, weight_decay=0.02, nesterov=True), torch.float64))
 * emit("ref_adam", run_opt(lambda ps: torch.optim.Adam(ps, lr=0.01), torch.float32))
 * emit("ref_adam_wd", run_opt(lambda ps: torch.optim.Adam(ps, lr=0.01, betas=(0.8, 0.99), weight_decay=0.1), torch.float32))
 * emit("ref_adamw", run_opt(lambda ps: torch.optim.AdamW(ps, lr=0.01, weight_decay=0.1), torch.float32))
 * emit("ref_adamw_f64", run_opt(lambda ps: torch.optim.AdamW(ps, lr=0.02, eps=1e-6, weight_decay=0.05), torch.float64))
 *
 * w = gen(15, 0.45, 0.1).reshape(5, 3).requires_grad_()
 * idx = torch.tensor([[1, 3, 1], [0, 1, 4]])
 * out = torch.nn.functional.embedding(idx, w); out.backward(gen(18, 0.9, 0.5).reshape(2, 3, 3))
 * emit("ref_emb_dweight", w.grad)
 */
